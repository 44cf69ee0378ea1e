/**
 * An evaluation's events, each sent as soon as what it promises holds (docs/agent.md,
 * "Evaluation"): the `.drv` closures of what must be built go to the push caches in growing
 * pieces, inputs first (push-chunks.ts), and a piece's derivation events go out once the piece is
 * in every cache they name, while the next piece is pushed; the attribute events follow the last.
 */
import type { CacheReport, EvaluationEvent } from "@nimbus/protocol";
import { type CachePlan, CachePusher } from "./evaluation-caches.ts";
import { planEvents } from "./evaluation-events.ts";
import { topologicalOrder } from "./nix-closure.ts";
import type { WalkResult } from "./nix-walk.ts";
import { growingChunks } from "./push-chunks.ts";
import type { PhaseTimings } from "./task-timings.ts";
import type { TaskCaches } from "./tasks/task-kind.ts";

export interface StreamInput {
  walk: WalkResult;
  plan: CachePlan;
  caches: TaskCaches;
  env: NodeJS.ProcessEnv;
  /** Stops the pushes (the evaluation's deadline, the task's cancel). */
  signal: AbortSignal;
  timings: PhaseTimings;
  /** Sends events in order (in batches); resolves when more may be sent. */
  send(events: EvaluationEvent[]): Promise<void>;
}

/**
 * Pushes and sends; resolves to the caches' reports once every event was handed to `send`. A
 * problem with an event (a system Nimbus cannot dispatch, too many combinations of caches) is
 * found before anything is pushed or sent.
 */
export async function streamEvents({ walk, plan, caches, env, signal, timings, send }: StreamInput): Promise<CacheReport[]> {
  const events = planEvents(walk, plan.toBuild, plan.infos);
  const stop = new AbortController();
  const pusher = new CachePusher(plan, caches, { env, signal: AbortSignal.any([signal, stop.signal]), timings });
  // Every event as it is once every cache took every piece: checked now, sent as is unless a cache fails.
  const everywhere = pusher.holding;
  const hoped = new Map(events.order.map((drv) => [drv, events.derivation(drv, plan.sourcesOf(drv, everywhere))]));
  timings.mark("events");

  // The derivations without events (an effect's own) are pushed too, after the others: its task reads its .drv from a cache.
  const toBuild = new Map([...plan.infos].filter(([drv]) => plan.toBuild.has(drv)));
  const order = topologicalOrder(events.order, toBuild);
  const chunks = pusher.pushes ? growingChunks(order) : [order];
  if (chunks.length === 0) chunks.push([]);
  // One piece after another, never waiting for the sending; each awaited below, in order.
  let previous: Promise<string[]> = Promise.resolve(everywhere);
  const pushed = chunks.map((chunk) => (previous = previous.then(() => pusher.push(chunk))));
  for (const p of pushed) p.catch(() => {});
  try {
    for (const [index, chunk] of chunks.entries()) {
      const holding = await pushed[index]!;
      if (index === 0) timings.mark("firstPush");
      // A cache that failed is named by no event from here on; the others' events were checked above.
      const same = holding.length === everywhere.length;
      const derivations = chunk.flatMap((drv) => (!hoped.has(drv) ? [] : same ? hoped.get(drv)! : events.derivation(drv, plan.sourcesOf(drv, holding))));
      const last = index === chunks.length - 1;
      await send(last ? [...derivations, ...events.attributes] : derivations);
    }
  } catch (err) {
    // Nothing is pushed for events that will not be sent.
    stop.abort(err);
    await Promise.allSettled(pushed);
    throw err;
  }
  timings.mark("streamed");
  return pusher.reports();
}
