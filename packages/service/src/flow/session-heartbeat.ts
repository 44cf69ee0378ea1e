import { NO_LONGER_HELD, reconcileHeartbeat, unlistedTaskAction } from "@nimbus/core";
import type { ServiceMessage } from "@nimbus/protocol";
import { timing } from "../platform/timing.ts";
import { releaseTask } from "../storage/sessions.ts";
import { heldTasks, type SessionItem } from "./sessions.ts";
import { taskKind } from "./tasks/registry.ts";

/**
 * A heartbeat that lists the agent's tasks (docs/reliability.md, "A task message lost on the
 * way"): a task its session has held for two heartbeat intervals that the agent does not list is
 * sent again while the session holds its lease, and its slot freed once it can no longer be
 * the session's (core `unlistedTaskAction`); a listed task the session does not hold is
 * cancelled. Returns the messages for the agent, and whether a slot was freed.
 */
export async function reconcileListedTasks(session: SessionItem, listed: readonly string[], now: Date): Promise<{ messages: ServiceMessage[]; freed: boolean }> {
  const sessionId = session.sessionId;
  const held = heldTasks(session);
  const plan = reconcileHeartbeat(
    held.map(([taskId, record]) => ({ taskId, startedAt: record.startedAt })),
    listed,
    now,
    // Two intervals: a heartbeat sent before the task's message arrived may be read after it.
    2 * timing().heartbeatIntervalMs,
  );
  const messages: ServiceMessage[] = [];
  let freed = false;
  for (const taskId of plan.check) {
    const record = session.tasks[taskId]!;
    const kind = taskKind(record.kind);
    const action = unlistedTaskAction(await kind.standing(taskId, record, session), now.getTime() - Date.parse(record.startedAt));
    if (action === "resend") {
      const message = await kind.resume(taskId, record, session);
      if (message) messages.push(message);
    }
    // Only this reservation: a later one of the same task is another dispatch's.
    else if (action === "release" && (await releaseTask(sessionId, taskId, record.startedAt))) freed = true;
  }
  for (const taskId of plan.cancel) messages.push({ type: "cancel", taskId, reason: NO_LONGER_HELD });
  return { messages, freed };
}
