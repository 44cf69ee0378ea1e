import { retryDecision } from "@nimbus/core";
import { timing } from "../platform/timing.ts";
import { sendToBuildQueue } from "../storage/build-queues.ts";
import { getDerivation, leaseIs, moveDerivation } from "../storage/derivations.ts";
import { mirrorStatus } from "../storage/job-derivations.ts";
import { indexShard, SHARD } from "../storage/keys.ts";
import type { WorkNotes } from "./new-work.ts";
import { settle } from "./settle.ts";

/**
 * A build that did not end through its own fault (its agent was lost, or reported
 * `exceptional`) is retried as core `retryDecision` says: back on its queue at once, after a
 * back-off (the sweeper sends it when due), or failed with the reason once the attempts run
 * out. Only the holder of the lease `taskId` moves it. The budget counts the derivation's
 * `retries`, not its attempt number: cancelling and restarting it costs no retry.
 */
export async function retryBuild(drvPath: string, taskId: string, reason: string, work: WorkNotes, now = new Date(), sessionId?: string): Promise<boolean> {
  const drv = await getDerivation(drvPath);
  if (drv?.status !== "building" || drv.lease?.taskId !== taskId || (sessionId !== undefined && drv.lease.sessionId !== sessionId)) return false;
  const retries = drv.retries ?? 0;
  // The lease condition also pins `retries`: only the lease holder's retry moves it — the session's, when it is named.
  const leaseHeld = leaseIs(taskId, sessionId);
  const decision = retryDecision(retries, reason, now, timing());
  if (decision.type === "give-up") {
    const failure = { reason: decision.reason };
    const failed = await moveDerivation(
      drvPath,
      { from: ["building"], to: "failed", set: { failure, finishedAt: now.toISOString() }, remove: ["lease"], condition: leaseHeld },
      now,
    );
    if (failed) await settle(failed, work, now);
    return failed !== undefined;
  }
  const due = decision.type === "retry-later" ? { dueShard: indexShard(SHARD.due, drvPath), dueAt: decision.dueAt.toISOString() } : {};
  const queued = await moveDerivation(
    drvPath,
    {
      from: ["building"],
      to: "queued",
      set: { lastError: reason, retries: retries + 1, ...due },
      remove: ["lease"],
      addAttempt: 1,
      condition: leaseHeld,
      // For the status history: an agent's own error report, or the agent went away (build.ts passes "agent error: …").
      note: { ended: reason.startsWith("agent error") ? "exceptional" : "lost" },
    },
    now,
  );
  if (!queued) return false;
  await mirrorStatus(queued);
  if (decision.type === "retry-later") return true;
  await sendToBuildQueue(queued);
  work.addBuildQueue(queued.queueKey);
  return true;
}
