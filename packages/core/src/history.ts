/**
 * A derivation's status history and build attempts, from the moves its item records
 * (docs/dashboard-api.md, `GET /api/derivations/{drv}`). Pure: the service stores the moves in
 * the same write that makes them, and reads turn them into what the dashboard shows.
 */
import type { AttemptView, DerivationStatus, StatusMove } from "@nimbus/protocol";

/** One move as stored: no attempt number (a move that bumped it says so). */
export interface RecordedMove {
  at: string;
  status: DerivationStatus;
  /** This move added one to the attempt number (a retry or a restart). */
  bump?: boolean;
  agent?: string;
  reason?: string;
  exitCode?: number;
  /** How the attempt before this move ended, for a move back to the queue. */
  ended?: "exceptional" | "lost";
}

/**
 * The moves with their attempt numbers, oldest first. The numbers are counted back from
 * `currentAttempt` (the item's as the API numbers it, from 1; written with the last move), so
 * a history cut at its start still numbers right.
 */
export function statusHistory(moves: readonly RecordedMove[], currentAttempt: number): StatusMove[] {
  const numbered: StatusMove[] = [];
  let attempt = currentAttempt;
  for (let i = moves.length - 1; i >= 0; i--) {
    const move = moves[i]!;
    numbered.push({
      at: move.at,
      status: move.status,
      attempt,
      ...(move.agent !== undefined ? { agent: move.agent } : {}),
      ...(move.reason !== undefined ? { reason: move.reason } : {}),
    });
    if (move.bump) attempt--;
  }
  return numbered.reverse();
}

const ENDS: Partial<Record<DerivationStatus, NonNullable<AttemptView["outcome"]>>> = {
  succeeded: "succeeded",
  failed: "failed",
  cancelled: "cancelled",
};

/**
 * The build attempts: each starts at a move to `building` (whose agent it takes) and ends at the
 * next move — succeeded, failed or cancelled, or back to the queue (`ended` says whether the
 * agent reported an error or went away). One still building has no outcome.
 */
export function buildAttempts(moves: readonly RecordedMove[], currentAttempt: number): AttemptView[] {
  const numbered = statusHistory(moves, currentAttempt);
  const attempts: AttemptView[] = [];
  let open: AttemptView | undefined;
  for (const [i, move] of numbered.entries()) {
    const recorded = moves[i]!;
    if (open) {
      const outcome = ENDS[move.status] ?? (move.status === "queued" || move.status === "waiting" ? (recorded.ended ?? "lost") : undefined);
      if (outcome) {
        open.finishedAt = move.at;
        open.outcome = outcome;
        if (recorded.exitCode !== undefined) open.exitCode = recorded.exitCode;
        if (move.reason !== undefined) open.reason = move.reason;
      }
      open = undefined;
    }
    if (move.status === "building") {
      open = { attempt: move.attempt, startedAt: move.at, ...(move.agent !== undefined ? { agent: move.agent } : {}) };
      attempts.push(open);
    }
  }
  return attempts;
}
