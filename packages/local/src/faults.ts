/**
 * Fault injection for chaos runs (docs/reliability.md, "What chaos proves"): the local runtime
 * fails the way AWS may, and the handlers never know. Off unless a stack is started with a
 * fault plan.
 *
 * - A handler invocation dies at an AWS request, as on a Lambda timeout: that request and
 *   every later one of the invocation fail before they are sent, and the invocation ends with
 *   an error (the gateway answers as it does for a failed Lambda). The handler's remaining
 *   code may still run, but can no longer change anything.
 * - An agent's frame reaches `$default` twice.
 * - A message a handler sends to SQS is delivered twice (a copy with its own deduplication id).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { subscribe } from "node:diagnostics_channel";
import type { ClientRequest } from "node:http";
import { seededRandom } from "./seeded-random.ts";

export interface FaultPlan {
  /** Chance that an AWS request a handler makes is where its invocation dies (0..1, per request). */
  handlerDeath?: number;
  /** Chance that an agent's frame is delivered to `$default` twice (0..1). */
  duplicateFrame?: number;
  /** Chance that a message sent to SQS is delivered twice (0..1). */
  duplicateMessage?: number;
  /** Seeds the choices, so a run can be repeated. */
  seed?: number;
}

export interface FaultCounts {
  /** Invocations that died at one of their AWS requests. */
  handlerDeaths: number;
  /** AWS requests refused because their invocation had died (they changed nothing). */
  requestsRefused: number;
  duplicateFrames: number;
  duplicateMessages: number;
}

/** Why a handler invocation ended early: an injected death, as a Lambda timeout would end it. */
export class HandlerDeathError extends Error {
  override name = "HandlerDeathError";
  constructor(message: string) {
    super(message);
    // One line wherever a dead handler's own code logs it: the trace is the fault injector's, not the handler's.
    this.stack = `${this.name}: ${message}`;
  }
}

export class FaultPlanError extends Error {
  override name = "FaultPlanError";
}

interface Invocation {
  spec: string;
  requests: number;
  dead: boolean;
  die(error: HandlerDeathError): void;
}

function checkChance(name: keyof FaultPlan, value: number | undefined): number {
  const chance = value ?? 0;
  if (!(chance >= 0 && chance <= 1)) throw new FaultPlanError(`fault plan: ${name} must be a chance between 0 and 1, not ${String(value)}`);
  return chance;
}

// One subscription per process: requests are matched to their invocation through async context.
let current: AsyncLocalStorage<Invocation> | undefined;
const injectors = new Set<FaultInjector>();

function watchRequests(): AsyncLocalStorage<Invocation> {
  if (current) return current;
  const storage = new AsyncLocalStorage<Invocation>();
  current = storage;
  subscribe("http.client.request.created", (message) => {
    const invocation = storage.getStore();
    if (!invocation) return;
    for (const injector of injectors) injector.onRequest(invocation, (message as { request: ClientRequest }).request);
  });
  return storage;
}

export class FaultInjector {
  readonly counts: FaultCounts = { handlerDeaths: 0, requestsRefused: 0, duplicateFrames: 0, duplicateMessages: 0 };
  private readonly handlerDeath: number;
  private readonly duplicateFrameChance: number;
  private readonly duplicateMessageChance: number;
  private readonly random: () => number;
  private readonly storage?: AsyncLocalStorage<Invocation>;

  constructor(plan: FaultPlan) {
    this.handlerDeath = checkChance("handlerDeath", plan.handlerDeath);
    this.duplicateFrameChance = checkChance("duplicateFrame", plan.duplicateFrame);
    this.duplicateMessageChance = checkChance("duplicateMessage", plan.duplicateMessage);
    this.random = seededRandom(plan.seed ?? Date.now());
    if (this.handlerDeath > 0) {
      this.storage = watchRequests();
      injectors.add(this);
    }
  }

  /** Stops injecting (the stack stops). */
  close(): void {
    injectors.delete(this);
  }

  /**
   * Runs one handler invocation. Under a death plan each of its AWS requests may be where it
   * dies: the invocation then rejects at once, and its later requests fail unsent.
   */
  run<T>(spec: string, invoke: () => Promise<T>): Promise<T> {
    if (!this.storage) return invoke();
    return new Promise<T>((resolve, reject) => {
      const invocation: Invocation = { spec, requests: 0, dead: false, die: reject };
      this.storage!.run(invocation, () => {
        invoke().then(resolve, (error: unknown) => {
          // After a death, what the handler's own code ends with no longer matters.
          if (!invocation.dead) reject(error);
        });
      });
    });
  }

  /** Whether this frame is delivered twice. */
  duplicateFrame(): boolean {
    if (!(this.random() < this.duplicateFrameChance)) return false;
    this.counts.duplicateFrames++;
    return true;
  }

  /** Whether this message is delivered twice. */
  duplicateMessage(): boolean {
    if (!(this.random() < this.duplicateMessageChance)) return false;
    this.counts.duplicateMessages++;
    return true;
  }

  /** @internal Called for every HTTP request an invocation starts. */
  onRequest(invocation: Invocation, request: ClientRequest): void {
    invocation.requests++;
    if (!invocation.dead && this.random() < this.handlerDeath) {
      invocation.dead = true;
      this.counts.handlerDeaths++;
      invocation.die(new HandlerDeathError(`${invocation.spec} died at its AWS request ${invocation.requests} (injected, as a Lambda timeout)`));
    }
    if (!invocation.dead) return;
    this.counts.requestsRefused++;
    request.destroy(new HandlerDeathError(`${invocation.spec} is dead: its request was not sent (injected)`));
  }
}
