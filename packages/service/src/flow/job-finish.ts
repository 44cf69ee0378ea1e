import { isFinalOutcome, jobCheck, jobOutcome, rowVerdict, UNSETTLED } from "@nimbus/core";
import type { JobStatus } from "@nimbus/protocol";
import { jobDerivationRows, jobHasStatus } from "../storage/job-derivations.ts";
import { keptUnsettled, writeJobMovesReturning } from "../storage/job-counts.ts";
import { getJob, setJobStatus } from "../storage/jobs.ts";
import { effectsOutcome } from "./effects.ts";
import type { WorkNotes } from "./new-work.ts";

/**
 * Finishes the job if nothing in it can still change (core `jobCheck`, `jobOutcome`). A settle
 * (`counted`) first writes its moves of the job's counts, and the write returns the job: while
 * those counts hold an unsettled derivation, that is enough to leave it. Every move out of the
 * unsettled statuses is a settle's, written before it looks, so the last of them sees none left
 * (moves among them, like queued → building, leave the sum alone). Otherwise the cheap index
 * look, and the consistent full count only when the index says nothing is left (indexes may
 * lag). A count a dead Lambda left too high keeps only settles from finishing the job: the
 * sweeper looks without the counts (docs/reliability.md, "No job hangs").
 */
export async function finishJobIfDone(
  jobId: string,
  now = new Date(),
  work?: WorkNotes,
  options: { counted?: boolean } = {},
): Promise<JobStatus | undefined> {
  const counted = options.counted ? await writeJobMovesReturning(jobId) : undefined;
  const job = counted ?? (await getJob(jobId));
  const check = jobCheck(job && { status: job.status, evaluation: job.evaluation.status });
  if (!job || check === "leave") return undefined;
  if (check === "look-for-unsettled") {
    if (counted && (keptUnsettled(counted) ?? 0) > 0) return undefined;
    for (const status of UNSETTLED) if (await jobHasStatus(jobId, status)) return undefined;
  }
  // Failures of may-fail and must-fail attributes are excused; a must-fail one that built is not (core attribute-verdict.ts).
  const { counts, failures, unmetMustFail } = rowVerdict(await jobDerivationRows(jobId));
  const outcome = jobOutcome({ evaluation: job.evaluation.status, attributeErrors: job.attributeErrors ?? 0, counts, verdict: { failures, unmetMustFail } });
  if (!isFinalOutcome(outcome)) return undefined;
  // A job with effects ends when they do (docs/effects.md); `work` wakes agents for those it starts.
  const final = await effectsOutcome(job, outcome, now, work);
  if (final === undefined) return undefined;
  // The consistent count just made is exact: it replaces the counts kept while the job ran.
  return (await setJobStatus(jobId, final, now, counts)) ? final : undefined;
}
