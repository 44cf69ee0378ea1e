import { dynamo } from "../../packages/service/src/platform/aws-clients.ts";

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
