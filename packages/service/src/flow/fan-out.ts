/**
 * The FanOut queue's pages (docs/architecture.md, "Fan-out in pages"): a settle's next
 * dependents, or a cancelled job's next derivations, one page per message. A page goes on from
 * where its derivation or job says the last one stopped, not from the message, and every move
 * it makes is conditional, so a page delivered twice — or after the sweeper went on with it —
 * moves nothing twice and starts no second chain (core `fanOutKeys`).
 */
import { settleContinues } from "@nimbus/core";
import { getDerivation } from "../storage/derivations.ts";
import { getJob } from "../storage/jobs.ts";
import type { FanOutMessage } from "../storage/queue-messages.ts";
import { continueCancel } from "./job-cancel.ts";
import type { WorkNotes } from "./new-work.ts";
import { settle } from "./settle.ts";

/** A page of the cancel's rows may take this long (well inside the consumer's 30 s). */
const CANCEL_PAGE_MS = 10_000;

export async function continueFanOut(message: FanOutMessage, work: WorkNotes, now = new Date()): Promise<void> {
  if (message.type === "settle") {
    const drv = await getDerivation(message.drvPath);
    if (drv && settleContinues(drv, message)) await settle(drv, work, now);
    return;
  }
  const job = await getJob(message.jobId);
  if (job?.status === "cancelled" && job.cancelling) await continueCancel(job, Date.now() + CANCEL_PAGE_MS, now);
}
