import { sendToBuildQueue } from "./build-queues.ts";
import { moveDerivation } from "./derivations.ts";
import { noteNewWork } from "./dispatch.ts";
import { settled } from "./graph.ts";
import { mirrorStatus } from "./job-derivations.ts";
import { retryDelayMs, timing } from "./timing.ts";

/**
 * A build that did not end through its own fault (its agent was lost, or reported
 * `exceptional`) goes back to its queue — at once the first time, then with back-off —
 * until the attempts run out; then it fails with the reason. Only the lease `taskId` moves it.
 */
export async function retryBuild(drvPath: string, taskId: string, attempt: number, reason: string, now = new Date()): Promise<void> {
  const t = timing();
  const leaseHeld = { expression: "lease.taskId = :task", values: { ":task": taskId } };
  const next = attempt + 1;
  if (next >= t.maxAttempts) {
    const failure = { reason: `${reason}; gave up after ${next} attempts` };
    const failed = await moveDerivation(
      drvPath,
      { from: ["building"], to: "failed", set: { failure, finishedAt: now.toISOString() }, remove: ["lease"], condition: leaseHeld },
      now,
    );
    if (failed) await settled(failed, now);
    return;
  }
  const delay = retryDelayMs(next, t);
  const due = delay > 0 ? { dueShard: "d", dueAt: new Date(now.getTime() + delay).toISOString() } : {};
  const queued = await moveDerivation(
    drvPath,
    { from: ["building"], to: "queued", set: { lastError: reason, ...due }, remove: ["lease"], addAttempt: 1, condition: leaseHeld },
    now,
  );
  if (!queued) return;
  await mirrorStatus(drvPath, "queued", queued.updatedAt);
  if (delay > 0) return; // the sweeper sends it when it is due
  await sendToBuildQueue(queued);
  noteNewWork(queued.queueKey);
}
