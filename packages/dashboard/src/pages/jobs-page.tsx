/** `/`: jobs, newest first, live; filtered by repository and branch (in the URL). */
import type { JobList, JobSummary } from "@nimbus/protocol";
import { useState } from "preact/hooks";
import { listJobs, type JobFilter } from "../api/endpoints.ts";
import { ErrorNote } from "../components/error-note.tsx";
import { StatusBadge } from "../components/status.tsx";
import { Ago, useNow } from "../components/time.tsx";
import { between, refLabel, shortCommit } from "../format.ts";
import { usePoll } from "../live/use-poll.ts";
import { navigate } from "../router.ts";
import { routeHref, type Route } from "../routes.ts";

const POLL_MS = 2_000;

export function JobsPage({ route }: { route: Extract<Route, { page: "jobs" }> }) {
  const filter: JobFilter = { repository: route.repository, branch: route.branch };
  const now = useNow();
  const first = usePoll<JobList>((signal, cached) => listJobs(filter, undefined, signal, cached), [route.repository, route.branch], {
    intervalMs: POLL_MS,
  });
  const [older, setOlder] = useState<{ key: string; jobs: JobSummary[]; cursor?: string; error?: unknown }>();
  const filterKey = `${route.repository ?? ""}\n${route.branch ?? ""}`;
  const olderHere = older?.key === filterKey ? older : undefined;

  const jobs = dedupe([...(first.value?.jobs ?? []), ...(olderHere?.jobs ?? [])]);
  const cursor = olderHere ? olderHere.cursor : first.value?.cursor;

  const loadOlder = async () => {
    try {
      const { value } = await listJobs(filter, cursor);
      setOlder({ key: filterKey, jobs: [...(olderHere?.jobs ?? []), ...value.jobs], cursor: value.cursor });
    } catch (error) {
      setOlder({ key: filterKey, jobs: olderHere?.jobs ?? [], cursor, error });
    }
  };

  return (
    <section>
      <h1>Jobs</h1>
      <FilterForm route={route} />
      <ErrorNote error={first.error} what="the jobs" />
      {first.value === undefined && !first.error ? <p class="note">Loading jobs…</p> : null}
      {first.value !== undefined && jobs.length === 0 ? (
        <p class="note">
          {route.repository || route.branch
            ? "No job matches this filter."
            : "No jobs yet. Push to a repository whose webhook points here, or run `npx nimbus trigger <path>`."}
        </p>
      ) : null}
      {jobs.length > 0 ? (
        <table class="jobs">
          <caption class="visually-hidden">Jobs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Job</th>
              <th scope="col">Repository</th>
              <th scope="col">Branch</th>
              <th scope="col">Commit</th>
              <th scope="col">Trigger</th>
              <th scope="col">Created</th>
              <th scope="col">Took</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => (
              <tr key={job.id} data-job={job.id}>
                <td>
                  <StatusBadge status={job.status} />
                </td>
                <td>
                  <a href={routeHref({ page: "job", jobId: job.id, tab: "derivations" })}>{job.id}</a>
                </td>
                <td>
                  <a href={routeHref({ page: "jobs", repository: job.repository })} title={`Only ${job.repository}`}>
                    {job.repository}
                  </a>
                </td>
                <td>
                  {job.ref ? (
                    <a href={routeHref({ page: "jobs", repository: job.repository, branch: refLabel(job.ref) })}>{refLabel(job.ref)}</a>
                  ) : null}
                </td>
                <td>
                  <code title={job.commit}>{shortCommit(job.commit)}</code>
                </td>
                <td>
                  {job.trigger.event}
                  {job.trigger.sender ? ` by ${job.trigger.sender}` : ""}
                </td>
                <td>
                  <Ago at={job.createdAt} now={now} />
                </td>
                <td>{between(job.createdAt, job.finishedAt, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <ErrorNote error={olderHere?.error} what="older jobs" />
      {cursor ? (
        <button type="button" onClick={loadOlder}>
          Show older jobs
        </button>
      ) : null}
    </section>
  );
}

function FilterForm({ route }: { route: Extract<Route, { page: "jobs" }> }) {
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const text = (name: string) => String(data.get(name) ?? "").trim() || undefined;
    navigate(routeHref({ page: "jobs", repository: text("repository"), branch: text("branch") }));
  };
  return (
    <form class="filters" role="search" onSubmit={onSubmit} key={`${route.repository}|${route.branch}`}>
      <label>
        Repository
        <input name="repository" defaultValue={route.repository ?? ""} placeholder="owner/name" autoComplete="off" />
      </label>
      <label>
        Branch
        <input name="branch" defaultValue={route.branch ?? ""} placeholder="main" autoComplete="off" />
      </label>
      <button type="submit">Filter</button>
      {route.repository || route.branch ? <a href="/">Clear</a> : null}
    </form>
  );
}

function dedupe(jobs: JobSummary[]): JobSummary[] {
  const seen = new Set<string>();
  return jobs.filter((job) => !seen.has(job.id) && seen.add(job.id));
}
