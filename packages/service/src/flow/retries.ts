import { retryDecision } from "@nimbus/core";
import { timing } from "../platform/timing.ts";
import { sendToBuildQueue } from "../storage/build-queues.ts";
import { moveDerivation } from "../storage/derivations.ts";
import { mirrorStatus } from "../storage/job-derivations.ts";
import { SHARD } from "../storage/keys.ts";
import type { WorkNotes } from "./new-work.ts";
import { settle } from "./settle.ts";

/**
 * A build that did not end through its own fault (its agent was lost, or reported
 * `exceptional`) is retried as core `retryDecision` says: back on its queue at once, after a
 * back-off (the sweeper sends it when due), or failed with the reason once the attempts run
 * out. Only the holder of the lease `taskId` moves it.
 */
export async function retryBuild(drvPath: string, taskId: string, attempt: number, reason: string, work: WorkNotes, now = new Date()): Promise<void> {
  const leaseHeld = { expression: "lease.taskId = :task", values: { ":task": taskId } };
  const decision = retryDecision(attempt, reason, now, timing());
  if (decision.type === "give-up") {
    const failure = { reason: decision.reason };
    const failed = await moveDerivation(
      drvPath,
      { from: ["building"], to: "failed", set: { failure, finishedAt: now.toISOString() }, remove: ["lease"], condition: leaseHeld },
      now,
    );
    if (failed) await settle(failed, work, now);
    return;
  }
  const due = decision.type === "retry-later" ? { dueShard: SHARD.due, dueAt: decision.dueAt.toISOString() } : {};
  const queued = await moveDerivation(
    drvPath,
    {
      from: ["building"],
      to: "queued",
      set: { lastError: reason, ...due },
      remove: ["lease"],
      addAttempt: 1,
      condition: leaseHeld,
      // For the status history: an agent's own error report, or the agent went away (build.ts passes "agent error: …").
      note: { ended: reason.startsWith("agent error") ? "exceptional" : "lost" },
    },
    now,
  );
  if (!queued) return;
  await mirrorStatus(drvPath, "queued", queued.updatedAt);
  if (decision.type === "retry-later") return;
  await sendToBuildQueue(queued);
  work.addBuildQueue(queued.queueKey);
}
