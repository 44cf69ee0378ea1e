/**
 * How the local runtime finds and calls Lambda handlers. SST names a handler
 * `<path relative to the repository root>.<export>`; locally that file is `<path>.ts`.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Context } from "aws-lambda";
import type { FaultInjector } from "./faults.ts";

// Handlers are plain async functions of (event, context), exactly as Lambda calls them.
export type LambdaHandler = (event: any, context: Context) => unknown;

/** Turns a handler spec (`functions/api/agents.handler`) into the function to call. */
export type HandlerResolver = (spec: string) => Promise<LambdaHandler>;

/** packages/local/src → repository root. */
export const repoRoot: string = fileURLToPath(new URL("../../../", import.meta.url));

export class HandlerResolutionError extends Error {
  override name = "HandlerResolutionError";
  constructor(
    readonly spec: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot load handler "${spec}": ${message}`, options);
  }
}

/** Splits `dir/file.export` at its last dot, as SST does. */
export function parseHandlerSpec(spec: string): { file: string; exportName: string } {
  const dot = spec.lastIndexOf(".");
  const slash = spec.lastIndexOf("/");
  if (dot <= 0 || dot < slash || dot === spec.length - 1) {
    throw new HandlerResolutionError(spec, 'expected "<path>.<export>", e.g. "functions/api/agents.handler"');
  }
  return { file: spec.slice(0, dot), exportName: spec.slice(dot + 1) };
}

/** Production resolver: `import()` of `<root>/<path>.ts` (run under tsx). */
export function importHandlerFrom(root: string = repoRoot): HandlerResolver {
  return async (spec) => {
    const { file, exportName } = parseHandlerSpec(spec);
    const url = pathToFileURL(join(root, `${file}.ts`)).href;
    let module: Record<string, unknown>;
    try {
      module = (await import(url)) as Record<string, unknown>;
    } catch (error) {
      throw new HandlerResolutionError(spec, `import of ${url} failed: ${String(error)}`, { cause: error });
    }
    const handler = module[exportName];
    if (typeof handler !== "function") {
      throw new HandlerResolutionError(spec, `${url} has no exported function "${exportName}"`);
    }
    return handler as LambdaHandler;
  };
}

/** Default SST function timeout; only feeds `context.getRemainingTimeInMillis()`. */
const FUNCTION_TIMEOUT_MS = 20_000;

function lambdaContext(spec: string, requestId: string): Context {
  const functionName = `nimbus-local-${parseHandlerSpec(spec).file.replaceAll("/", "-")}`;
  const deadline = Date.now() + FUNCTION_TIMEOUT_MS;
  const unsupported = (): never => {
    throw new Error("callback-style Lambda completion is not supported; return a promise");
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: "1024",
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "local",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

/** Invokes handlers by spec, resolving each spec once. */
export class HandlerInvoker {
  private readonly resolved = new Map<string, Promise<LambdaHandler>>();
  private readonly inFlight = new Set<Promise<unknown>>();

  /** `faults`: a chaos run's fault injector, which may end an invocation early (packages/local/src/faults.ts). */
  constructor(
    private readonly resolve: HandlerResolver,
    private readonly faults?: FaultInjector,
  ) {}

  /**
   * Resolves every spec now, as Lambda's cold start would, so that no handler is first loaded
   * while the process stops: Ctrl-C reaches the whole process group, and the TypeScript
   * loader's esbuild child dies with it, failing any later import (docs/local.md). A spec that
   * fails is logged and resolved again on its first call.
   */
  async preload(specs: Iterable<string>, log: (line: string) => void): Promise<void> {
    await Promise.all(
      [...new Set(specs)].map((spec) => this.resolveOnce(spec).catch((error: unknown) => log(`handler ${spec} not loaded: ${describeError(error)}`))),
    );
  }

  invoke(spec: string, event: unknown): Promise<unknown> {
    const run = this.run(spec, event);
    this.inFlight.add(run);
    const forget = () => this.inFlight.delete(run);
    run.then(forget, forget);
    return run;
  }

  /**
   * Waits, at most `timeoutMs`, until no invocation runs — also those started while it waits
   * (a handler's follow-up may start another); true when none is left.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    let expired = false;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        expired = true;
        resolve();
      }, timeoutMs);
    });
    try {
      while (this.inFlight.size > 0 && !expired) await Promise.race([Promise.allSettled([...this.inFlight]), timedOut]);
      return this.inFlight.size === 0;
    } finally {
      clearTimeout(timer);
    }
  }

  private resolveOnce(spec: string): Promise<LambdaHandler> {
    let handler = this.resolved.get(spec);
    if (!handler) {
      handler = this.resolve(spec);
      this.resolved.set(spec, handler);
      // A failed import is retried on the next call (the file may be fixed meanwhile).
      handler.catch(() => this.resolved.delete(spec));
    }
    return handler;
  }

  private async run(spec: string, event: unknown): Promise<unknown> {
    const handler = await this.resolveOnce(spec);
    const call = async () => handler(event, lambdaContext(spec, randomUUID()));
    return this.faults ? this.faults.run(spec, call) : call();
  }
}

/** One log line for a failed invocation: the message, never a stack trace. */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
