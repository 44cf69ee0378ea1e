import { AsyncLocalStorage } from "node:async_hooks";
import { dynamo, gatewayManagement, sqs } from "../../packages/service/src/platform/aws-clients.ts";

/** Counts the service's DynamoDB requests that `matches` (command name, input) while `fn` runs. */
export async function countDynamoRequests(matches: (command: string, input: Record<string, unknown>) => boolean, fn: () => Promise<void>): Promise<number> {
  let count = 0;
  const name = `countRequests${Math.random().toString(36).slice(2)}`;
  dynamo().middlewareStack.add(
    (next, context) => async (args) => {
      if (matches(context.commandName ?? "", args.input as Record<string, unknown>)) count++;
      return next(args);
    },
    { step: "initialize", name },
  );
  try {
    await fn();
  } finally {
    dynamo().middlewareStack.remove(name);
  }
  return count;
}

/** One AWS request a handler made: the client, the command, and its input. */
export interface Request {
  client: "dynamodb" | "sqs" | "gateway";
  command: string;
  input: Record<string, any>;
}

/**
 * Records every request `fn` makes through the service's clients (its own, not those of an
 * invocation still finishing beside it, like the dispatch deleting the message of the build
 * just received); `intercept` may act before one is sent (fill a slot, or throw as a dying
 * handler would).
 */
export async function recording(fn: () => Promise<void>, intercept?: (request: Request) => Promise<void>): Promise<Request[]> {
  const requests: Request[] = [];
  const scope = new AsyncLocalStorage<true>();
  const name = `recordRequests${Math.random().toString(36).slice(2)}`;
  const clients = [
    ["dynamodb", dynamo()],
    ["sqs", sqs()],
    ["gateway", gatewayManagement()],
  ] as const;
  for (const [client, sdk] of clients) {
    (sdk.middlewareStack as { add: (m: unknown, o: unknown) => void }).add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName: string }) => async (args: { input: Record<string, any> }) => {
        if (!scope.getStore()) return next(args);
        const request = { client, command: context.commandName, input: args.input };
        requests.push(request);
        await intercept?.(request);
        return next(args);
      },
      { step: "initialize", name },
    );
  }
  try {
    await scope.run(true, fn);
  } finally {
    for (const [, sdk] of clients) sdk.middlewareStack.remove(name);
  }
  return requests;
}
