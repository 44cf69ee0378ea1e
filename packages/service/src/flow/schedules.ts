/**
 * `onSchedule` (docs/effects.md, "Schedules"): the default branch's latest evaluation says which
 * schedules a repository has; the sweeper starts a job for each whose time came, on that commit,
 * once however many of its times were missed, and moves it to its next time.
 */
import { createHash } from "node:crypto";
import { nextRun, scheduleStep } from "@nimbus/core";
import type { JobConfig } from "@nimbus/protocol";
import type { JobItem, ScheduleItem } from "../storage/items.ts";
import { indexShard, SHARD } from "../storage/keys.ts";
import { advanceSchedule, deleteSchedule, dueSchedules, putSchedule, repositorySchedules } from "../storage/schedules.ts";
import { isDefaultBranch } from "./effects.ts";
import { startJob } from "./job-start.ts";
import type { WorkNotes } from "./new-work.ts";

/** A schedule's key: its minute and hour, when left out, are picked from it. */
export const scheduleKey = (repository: string, name: string) => `${repository}#${name}`;

/**
 * What a push's first job on the default branch says of the repository's schedules: each is
 * written with its next run (kept when its `when` did not change), those it no longer has go.
 * Other branches, forks and older commits change nothing.
 */
export async function recordSchedules(job: JobItem, config: JobConfig, now: Date): Promise<void> {
  if (!isDefaultBranch(job) || job.untrusted || job.trigger.event !== "push") return;
  const existing = new Map((await repositorySchedules(job.repository)).map((s) => [s.name, s]));
  for (const { name, when } of config.onSchedule) {
    const before = existing.get(name);
    existing.delete(name);
    const same = before?.nextRunAt && JSON.stringify(before.when) === JSON.stringify(when);
    const next = same ? new Date(before.nextRunAt!) : nextRun(when, scheduleKey(job.repository, name), now);
    await putSchedule({
      repository: job.repository,
      name,
      when,
      ref: job.ref!,
      commit: job.commit,
      cloneUrl: job.cloneUrl,
      defaultBranch: job.defaultBranch!,
      ...(job.onGithub ? { onGithub: true } : {}),
      ...(job.private ? { private: true } : {}),
      ...(job.installationId !== undefined ? { installationId: job.installationId } : {}),
      sourceJobId: job.jobId,
      sourceCreatedAt: job.createdAt,
      ...(next ? { dueShard: indexShard(SHARD.schedule, `${job.repository}#${name}`), nextRunAt: next.toISOString() } : {}),
      ...(before?.lastRunAt ? { lastRunAt: before.lastRunAt } : {}),
      ...(before?.lastJobId ? { lastJobId: before.lastJobId } : {}),
      updatedAt: now.toISOString(),
    });
  }
  for (const gone of existing.values()) await deleteSchedule(gone.repository, gone.name, job.createdAt);
}

/** A scheduled run's job id: from its schedule and due time, so a sweep that died half-way makes the same job again. */
export function scheduledJobId(item: Pick<ScheduleItem, "repository" | "name" | "nextRunAt">): string {
  const due = Date.parse(item.nextRunAt!);
  return `j${due.toString(16).padStart(12, "0")}${createHash("sha256").update(scheduleKey(item.repository, item.name)).digest("hex").slice(0, 8)}`;
}

/** Starts a job for each schedule whose time came (once, whatever was missed), and moves it on. Returns how many it started. */
export async function runDueSchedules(now: Date, work: WorkNotes): Promise<number> {
  let started = 0;
  for (const item of await dueSchedules(now)) {
    const { run, next } = scheduleStep(item.when, scheduleKey(item.repository, item.name), new Date(item.nextRunAt!), now);
    if (!run) continue;
    const jobId = scheduledJobId(item);
    // The job first, then the move: a sweep that dies between makes the same job again, which exists already.
    const job: Parameters<typeof startJob>[1] = {
      repository: item.repository,
      ref: item.ref,
      commit: item.commit,
      cloneUrl: item.cloneUrl,
      trigger: { event: "schedule" },
      github: { onGithub: item.onGithub ?? false, private: item.private ?? false, ...(item.installationId !== undefined ? { installationId: item.installationId } : {}) },
      handler: { kind: "onSchedule", name: item.name },
      defaultBranch: item.defaultBranch,
    };
    await startJob(jobId, job, now.toISOString(), work);
    if (await advanceSchedule(item, next, jobId, now)) started++;
  }
  return started;
}

