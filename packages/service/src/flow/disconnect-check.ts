import { disconnectCheck } from "@nimbus/core";
import { timing } from "../platform/timing.ts";
import type { DisconnectCheckMessage } from "../storage/queue-messages.ts";
import { getSessionLoad } from "../storage/sessions.ts";
import type { WorkNotes } from "./new-work.ts";
import { endSession } from "./session-end.ts";

/**
 * The check scheduled when a session's connection closed, once the disconnect grace is over
 * (docs/reliability.md, "Fast re-queue"): if its agent did not come back (core
 * `disconnectCheck`), the session ends and its tasks go to other agents. The end is
 * conditional on what was checked, so an agent that returns meanwhile keeps everything.
 * Whether it ended the session.
 */
export async function checkDisconnectedSession(check: DisconnectCheckMessage, work: WorkNotes): Promise<boolean> {
  const session = await getSessionLoad(check.sessionId);
  if (disconnectCheck(session, check.detachedAt) !== "end") return false;
  const reason = `its agent disconnected and was not back within ${timing().disconnectGraceMs / 1000} s`;
  return (await endSession(check.sessionId, reason, work, { seenBefore: check.detachedAt, detachedOnly: true })) !== undefined;
}
