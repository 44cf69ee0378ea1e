import { isAbandonedSlot, NO_LONGER_HELD, reconcileSession } from "@nimbus/core";
import type { ServiceMessage } from "@nimbus/protocol";
import { timing } from "../platform/timing.ts";
import { releaseTask } from "../storage/sessions.ts";
import type { SessionItem } from "./sessions.ts";
import { taskKind } from "./tasks/registry.ts";

/**
 * What a (re)connecting agent must hear about its tasks (core `reconcileSession`): those its
 * session holds but the agent no longer runs are sent again while the session still holds
 * their lease — and their slot given back when it has not for a while (core
 * `isAbandonedSlot`); those the agent runs but the session no longer holds are cancelled.
 */
export async function resumeTasks(session: SessionItem, tasksInProgress: readonly string[], now: Date): Promise<ServiceMessage[]> {
  const plan = reconcileSession(Object.keys(session.tasks), tasksInProgress);
  const messages: ServiceMessage[] = [];
  for (const taskId of plan.resendIfLeased) {
    const record = session.tasks[taskId]!;
    const task = await taskKind(record.kind).resume(taskId, record, session);
    if (task) messages.push(task);
    else if (isAbandonedSlot(record, false, now, timing().heartbeatIntervalMs)) await releaseTask(session.sessionId, taskId);
  }
  for (const taskId of plan.cancel) messages.push({ type: "cancel", taskId, reason: NO_LONGER_HELD });
  return messages;
}
