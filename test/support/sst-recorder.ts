/**
 * Runs sst.config.ts's `run()` offline with SST's globals replaced by recorders, so a test can
 * read what it declares in AWS: each resource with its arguments, each function with what it
 * links, each queue subscription. SST itself does not run (it needs an AWS account); the
 * type-check in test/infra-typecheck.test.ts keeps these calls true to SST's real signatures.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/** A resource sst.config.ts constructed: `kind` is SST's class path, e.g. `aws.Queue`. */
export interface DeclaredResource {
  kind: string;
  name: string;
  args: Record<string, unknown> | undefined;
  extra: unknown[];
}

/** A Lambda function sst.config.ts declared through a route, a schedule or a subscription. */
export interface DeclaredFunction {
  /** Where it is attached, e.g. `AgentSocket $connect`, `queue DisconnectChecks`. */
  usedBy: string;
  handler: string;
  link: unknown[];
  timeout?: string;
  environment?: Record<string, string>;
}

export interface QueueSubscription {
  queue: DeclaredResource;
  function: DeclaredFunction;
  args: { batch?: { size?: number; window?: string; partialResponses?: boolean } } | undefined;
}

export interface Declaration {
  resources: DeclaredResource[];
  functions: DeclaredFunction[];
  subscriptions: QueueSubscription[];
  /** What the `$transform` registered for `sst.aws.Function` makes of a function's arguments. */
  transformFunction(args: Record<string, unknown>): Record<string, unknown>;
  /** The objects the handlers' `link` arrays hold, for comparing with a resource. */
  instanceOf(resource: DeclaredResource): unknown;
  returned: unknown;
}

/** Pulumi's Output, as far as sst.config.ts uses it: a value that `apply` maps. */
class RecordedOutput<T> {
  constructor(readonly value: T) {}
  apply<U>(f: (value: T) => U): RecordedOutput<U> {
    return new RecordedOutput(f(this.value));
  }
}

/** A value, unwrapped if sst.config.ts wrapped it in an Output. */
export const resolved = (value: unknown): unknown => (value instanceof RecordedOutput ? resolved(value.value) : value);

export async function declaredInAws(root: string): Promise<Declaration> {
  const resources: DeclaredResource[] = [];
  const functions: DeclaredFunction[] = [];
  const subscriptions: QueueSubscription[] = [];
  const instances = new Map<DeclaredResource, object>();
  const transforms = new Map<unknown, (args: Record<string, unknown>) => void>();

  const declaredFunction = (usedBy: string, args: Record<string, unknown>): DeclaredFunction => {
    const fn: DeclaredFunction = {
      usedBy,
      handler: String(args.handler),
      link: (resolved(args.link) as unknown[] | undefined) ?? [],
      timeout: args.timeout as string | undefined,
      environment: args.environment as Record<string, string> | undefined,
    };
    functions.push(fn);
    return fn;
  };

  const resourceClass = (kind: string) =>
    class {
      readonly declared: DeclaredResource;
      url = `https://${kind}.example.invalid`;
      constructor(name: string, args?: Record<string, unknown>, ...extra: unknown[]) {
        this.declared = { kind, name, args, extra };
        resources.push(this.declared);
        instances.set(this.declared, this);
      }
      route(route: string, args: Record<string, unknown>) {
        declaredFunction(`${this.declared.name} ${route}`, args);
      }
      subscribe(subscriber: Record<string, unknown>, args?: QueueSubscription["args"]) {
        const fn = declaredFunction(`queue ${this.declared.name}`, subscriber);
        subscriptions.push({ queue: this.declared, function: fn, args });
      }
    };

  const Function = resourceClass("aws.Function");
  // A Router's routes send a path prefix to a URL (no function of their own).
  const Router = class extends resourceClass("aws.Router") {
    readonly routes: { path: string; target: unknown }[] = [];
    override route(path: string, target: unknown) {
      this.routes.push({ path, target: resolved(target) });
    }
  };
  const CronV2 = class extends resourceClass("aws.CronV2") {
    constructor(name: string, args: Record<string, unknown>) {
      super(name, args);
      declaredFunction(`schedule ${name}`, args.function as Record<string, unknown>);
    }
  };
  const sst = {
    Secret: resourceClass("Secret"),
    aws: {
      Function,
      CronV2,
      Dynamo: resourceClass("aws.Dynamo"),
      Queue: resourceClass("aws.Queue"),
      Bucket: resourceClass("aws.Bucket"),
      Router,
      StaticSite: resourceClass("aws.StaticSite"),
      ApiGatewayWebSocket: resourceClass("aws.ApiGatewayWebSocket"),
      ApiGatewayV2: resourceClass("aws.ApiGatewayV2"),
    },
  };
  const globals: Record<string, unknown> = {
    $config: (config: unknown) => config,
    $app: { name: "nimbus", stage: "ci" },
    $util: { output: (value: unknown) => (value instanceof RecordedOutput ? value : new RecordedOutput(value)) },
    $transform: (cls: unknown, transform: (args: Record<string, unknown>) => void) => transforms.set(cls, transform),
    sst,
  };
  // SST sets these for the whole deploy; here only while sst.config.ts's code runs.
  const withGlobals = <T>(run: () => T): T => {
    const saved = Object.fromEntries(Object.keys(globals).map((key) => [key, Object.getOwnPropertyDescriptor(globalThis, key)]));
    Object.assign(globalThis, globals);
    const restore = () => {
      for (const [key, descriptor] of Object.entries(saved)) {
        if (descriptor) Object.defineProperty(globalThis, key, descriptor);
        else delete (globalThis as Record<string, unknown>)[key];
      }
    };
    try {
      const result = run();
      if (result instanceof Promise) return result.finally(restore) as T;
      restore();
      return result;
    } catch (error) {
      restore();
      throw error;
    }
  };

  const returned = await withGlobals(async () => {
    const config = (await import(pathToFileURL(join(root, "sst.config.ts")).href)).default as { run(): Promise<unknown> };
    return config.run();
  });
  return {
    resources,
    functions,
    subscriptions,
    returned,
    instanceOf: (resource) => instances.get(resource),
    transformFunction(args) {
      const transform = transforms.get(Function);
      if (!transform) throw new Error("sst.config.ts registers no $transform for sst.aws.Function");
      const copy = { ...args };
      withGlobals(() => transform(copy));
      return Object.fromEntries(Object.entries(copy).map(([key, value]) => [key, resolved(value)]));
    },
  };
}
