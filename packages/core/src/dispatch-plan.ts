/**
 * The dispatch policy (docs/architecture.md, "ready → dispatched"): which queues an agent with
 * free slots is served from and in which order, what to do with each message received, and
 * which idle agents to wake when new work arrives. The service's dispatch runner receives,
 * leases and sends; every choice it makes is one of these functions.
 */
import type { AgentInfo } from "@nimbus/protocol";
import { canBuild, capabilitiesOf, type BuildRequirements } from "./matching.ts";
import { parseQueueKey } from "./queue-key.ts";
import { shuffled } from "./shuffle.ts";

/** SQS hands out at most 10 messages per receive. */
export const MAX_RECEIVE = 10;
/** A wake-up fills at most this many idle agents: a bounded fan-out keeps each handler cheap. */
export const MAX_WOKEN = 16;
/** Messages of one queue left for other agents before the runner moves on to the next queue. */
export const MAX_SKIPPED = 50;

/** What dispatch needs to know of an agent's session. */
export interface SessionLoad {
  sessionId: string;
  /** Absent while the agent is away. */
  connectionId?: string;
  /** The agent asked for no new work. */
  draining?: boolean;
  runningTasks: number;
  agent: Pick<AgentInfo, "systems" | "systemFeatures" | "mandatoryFeatures" | "concurrentTasks">;
}

/** Connected, not draining, below its `concurrentTasks`. */
export const canTakeWork = (s: SessionLoad): boolean =>
  s.connectionId !== undefined && !s.draining && s.runningTasks < s.agent.concurrentTasks;

export const freeSlots = (s: SessionLoad): number => (canTakeWork(s) ? s.agent.concurrentTasks - s.runningTasks : 0);

/** A queue work may come from, as a task kind declares it. */
export interface QueueSource {
  /** The task kind whose messages the queue holds. */
  kind: string;
  /** Which queue (a name, or a build queue's key). */
  queue: string;
  /** Lower ranks are served first: evaluations (rank 0) make the work the builds (rank 1) do. */
  rank: number;
  /** What an agent must be able to build to serve it; none means any agent may. */
  requires?: BuildRequirements;
  /**
   * Work arrives there rarely (about one message per job, like evaluations): a receive that
   * finds it empty may be believed for a few seconds (flow/dispatch.ts).
   */
  rare?: boolean;
}

/**
 * The queues to serve a session from, in order: only those it may serve under Nix's rule,
 * lower ranks first, and a random order within a rank, so an agent serving several build
 * queues does not drain one and starve the others.
 */
export function planDispatch(session: SessionLoad, sources: readonly QueueSource[], random: () => number = Math.random): QueueSource[] {
  if (freeSlots(session) === 0) return [];
  const caps = capabilitiesOf(session.agent);
  const allowed = sources.filter((s) => !s.requires || canBuild(caps, s.requires));
  const ranks = [...new Set(allowed.map((s) => s.rank))].sort((a, b) => a - b);
  return ranks.flatMap((rank) => shuffled(allowed.filter((s) => s.rank === rank), random));
}

/** How trying to start one received task ended. */
export type StartOutcome =
  /** Leased and sent. */
  | "sent"
  /** Leased, but the connection was gone: the task is the session's all the same (re-sent when it reconnects). */
  | "undelivered"
  /** Its target no longer waits for an agent (settled, cancelled, leased by another, or the message is malformed). */
  | "stale"
  /** The session has no slot for it (or was not tried: the session filled up or stopped). */
  | "full"
  /** This agent cannot obtain its inputs (core obtaining.ts `placeBuild`), another agent's session can. */
  | "elsewhere"
  /** No agent's session can obtain its inputs: it waits, and the sweeper offers it again later. */
  | "nowhere";

export interface DispatchState {
  free: number;
  given: number;
  /** Stop after this receive: the session is full or its connection is gone. */
  stop: boolean;
  /** Messages of the current queue left for other agents (held until the runner moves on). */
  skipped: number;
}

export const startDispatch = (session: SessionLoad): DispatchState => ({ free: freeSlots(session), given: 0, stop: false, skipped: 0 });

/** Before receiving from the next queue: nothing skipped there yet. */
export const nextQueue = (state: DispatchState): DispatchState => ({ ...state, skipped: 0 });

/** How many messages to ask the queue for next (0: done with this queue). */
export const receiveCount = (state: DispatchState): number =>
  state.stop || state.skipped >= MAX_SKIPPED ? 0 : Math.min(MAX_RECEIVE, state.free);

/** Whether a received message is worth trying; if not, it counts as `full`. */
export const mayStart = (state: DispatchState): boolean => !state.stop && state.free > 0;

/**
 * What happens to a received message after it was tried: every one is deleted or put back,
 * since one left in flight would hold up its FIFO group until the visibility timeout. One for
 * another agent is put back once the runner is done with its queue (`put-back-later`): kept
 * in flight until then, it is not received again, so this agent reaches the messages behind it.
 * One no agent can take is deleted: the derivation stays queued and the sweeper sends it again.
 */
export function afterStart(
  state: DispatchState,
  outcome: StartOutcome,
): { message: "delete" | "put-back" | "put-back-later"; state: DispatchState } {
  const given = outcome === "sent" || outcome === "undelivered";
  return {
    message: outcome === "full" ? "put-back" : outcome === "elsewhere" ? "put-back-later" : "delete",
    state: {
      free: given ? state.free - 1 : state.free,
      given: given ? state.given + 1 : state.given,
      stop: state.stop || outcome === "undelivered" || outcome === "full",
      skipped: outcome === "elsewhere" ? state.skipped + 1 : state.skipped,
    },
  };
}

/** Work noted during one handler invocation: build queues that got messages, and whether an evaluation was queued. */
export interface NewWork {
  queueKeys: ReadonlySet<string>;
  evaluations: boolean;
}

/**
 * Which idle agents to wake for new work, instead of waiting for them to ask: those with a
 * free slot that may take it (any agent for an evaluation), least busy first so work
 * spreads, at most `limit`.
 */
export function planWake<S extends SessionLoad>(sessions: readonly S[], work: NewWork, limit: number = MAX_WOKEN): S[] {
  const queues = [...work.queueKeys].map(parseQueueKey);
  if (queues.length === 0 && !work.evaluations) return [];
  const fits = (s: S) =>
    work.evaluations || queues.some(({ system, features }) => canBuild(capabilitiesOf(s.agent), { system, requiredFeatures: features }));
  const load = (s: S) => s.runningTasks / s.agent.concurrentTasks;
  return sessions
    .filter((s) => canTakeWork(s) && fits(s))
    .sort((a, b) => load(a) - load(b))
    .slice(0, limit);
}
