/**
 * `/jobs/{id}`: what the job built and how it went — commit, trigger, evaluation, counts by
 * status, what waits for an agent none can be, evaluation errors, and the derivations or the
 * attribute tree as lists of any length, filtered by the server (status, attribute prefix).
 */
import type { AttributeView, DerivationStatus, JobDerivationView, JobStatusView } from "@nimbus/protocol";
import { useEffect, useMemo, useState } from "preact/hooks";
import { cancelJob, getJobStatus, listJobAttributes, listJobDerivations, rerunJob } from "../api/endpoints.ts";
import { ErrorNote } from "../components/error-note.tsx";
import { StatusBadge } from "../components/status.tsx";
import { Ago, useNow } from "../components/time.tsx";
import { between, drvName, plural, refLabel } from "../format.ts";
import { storeHash } from "../list/hash-ranges.ts";
import { CursorSource, HashRangeSource, type RowSource } from "../list/row-source.ts";
import { VirtualList } from "../list/virtual-list.tsx";
import { usePoll } from "../live/use-poll.ts";
import { navigate } from "../router.ts";
import { drvBasename, routeHref, type Route } from "../routes.ts";

type JobRoute = Extract<Route, { page: "job" }>;

const POLL_MS = 2_000;
const ROW_HEIGHT = 32;
const FINISHED = new Set<JobStatusView["status"]>(["succeeded", "failed", "cancelled"]);
/** Lists up to this long follow a running job's every change; longer ones offer a refresh. */
const LIVE_LIST_LIMIT = 200;
/** The order statuses are offered as filters: what needs attention first. */
const STATUS_ORDER: DerivationStatus[] = ["failed", "dependency-failed", "queued", "building", "waiting", "succeeded", "cached", "cancelled"];

export function JobPage({ route }: { route: JobRoute }) {
  const now = useNow();
  const job = usePoll<JobStatusView>((signal, cached) => getJobStatus(route.jobId, signal, cached), [route.jobId], {
    intervalMs: POLL_MS,
    live: (view) => !FINISHED.has(view.status),
  });
  const view = job.value;
  if (!view) {
    return (
      <section>
        <h1>
          Job <code>{route.jobId}</code>
        </h1>
        {job.error ? <ErrorNote error={job.error} what="this job" /> : <p class="note">Loading…</p>}
      </section>
    );
  }
  return (
    <section class="job">
      <h1>
        Job <code>{view.id}</code> <StatusBadge status={view.status} />
      </h1>
      <ErrorNote error={job.error} what="the latest state of this job" />
      <JobFacts job={view} now={now} />
      <JobActions job={view} refresh={job.refresh} />
      {view.evaluation.error ? (
        <section aria-labelledby="evaluation-error">
          <h2 id="evaluation-error">Evaluation failed</h2>
          <pre class="message">{view.evaluation.error}</pre>
        </section>
      ) : null}
      <WaitingForAgents job={view} />
      <AttributeErrors job={view} />
      <nav class="tabs" aria-label="Show">
        <a href={routeHref({ page: "job", jobId: view.id, tab: "derivations", status: route.status })} aria-current={route.tab === "derivations" ? "page" : undefined}>
          Derivations
        </a>
        <a href={routeHref({ page: "job", jobId: view.id, tab: "attributes", prefix: route.prefix })} aria-current={route.tab === "attributes" ? "page" : undefined}>
          Attributes
        </a>
      </nav>
      {route.tab === "derivations" ? <Derivations job={view} route={route} /> : <Attributes job={view} route={route} />}
    </section>
  );
}

function JobFacts({ job, now }: { job: JobStatusView; now: number }) {
  const { trigger, evaluation } = job;
  return (
    <dl class="facts">
      <dt>Repository</dt>
      <dd>
        <a href={routeHref({ page: "jobs", repository: job.repository })}>{job.repository}</a>
      </dd>
      {job.ref ? (
        <>
          <dt>Branch</dt>
          <dd>{refLabel(job.ref)}</dd>
        </>
      ) : null}
      <dt>Commit</dt>
      <dd>
        <code>{job.commit}</code>
      </dd>
      <dt>Trigger</dt>
      <dd>
        {trigger.event}
        {trigger.pullRequest !== undefined ? ` #${trigger.pullRequest}` : ""}
        {trigger.sender ? ` by ${trigger.sender}` : ""}
        {trigger.rerunOf ? (
          <>
            {" "}
            of <a href={routeHref({ page: "job", jobId: trigger.rerunOf, tab: "derivations" })}>{trigger.rerunOf}</a>
            {trigger.rebuildFailures ? ", rebuilding failures" : ""}
          </>
        ) : null}
      </dd>
      <dt>Evaluation</dt>
      <dd>
        <StatusBadge status={evaluation.status} />
        {evaluation.agent ? ` on ${evaluation.agent}` : ""}
      </dd>
      <dt>Created</dt>
      <dd>
        <Ago at={job.createdAt} now={now} />
      </dd>
      <dt>{job.finishedAt ? "Took" : "Running for"}</dt>
      <dd>{between(job.createdAt, job.finishedAt, now)}</dd>
    </dl>
  );
}

function JobActions({ job, refresh }: { job: JobStatusView; refresh: () => void }) {
  const [message, setMessage] = useState<{ text: string; error?: boolean }>();
  const [busy, setBusy] = useState(false);
  const running = !FINISHED.has(job.status);
  const failures = (job.counts.failed ?? 0) + (job.counts["dependency-failed"] ?? 0);

  const act = async (what: string, action: () => Promise<void>) => {
    setBusy(true);
    setMessage({ text: `${what}…` });
    try {
      await action();
    } catch (error) {
      setMessage({ text: `${what} failed: ${error instanceof Error ? error.message : String(error)}`, error: true });
    } finally {
      setBusy(false);
    }
  };
  const cancel = () => {
    if (!confirm(`Cancel job ${job.id}? Its waiting and queued derivations are cancelled unless another running job needs them; running builds finish.`)) return;
    void act("Cancelling", async () => {
      await cancelJob(job.id);
      setMessage({ text: "Cancelled." });
      refresh();
    });
  };
  const rerun = (rebuildFailures: boolean) =>
    act(rebuildFailures ? "Rebuilding failures" : "Rerunning", async () => {
      const { jobId } = await rerunJob(job.id, rebuildFailures);
      navigate(routeHref({ page: "job", jobId, tab: "derivations" }));
    });

  return (
    <div class="actions">
      {running ? (
        <button type="button" class="danger" disabled={busy} onClick={cancel}>
          Cancel job
        </button>
      ) : null}
      <button type="button" disabled={busy} onClick={() => rerun(false)}>
        Rerun
      </button>
      {failures > 0 ? (
        <button type="button" disabled={busy} onClick={() => rerun(true)}>
          Rebuild failures
        </button>
      ) : null}
      <p class={message?.error ? "error" : "note"} role="status">
        {message?.text ?? ""}
      </p>
    </div>
  );
}

/** Queued derivations no connected agent may build, grouped by what they need. */
function WaitingForAgents({ job }: { job: JobStatusView }) {
  const queued = job.counts.queued ?? 0;
  const waiting = usePoll(
    async (signal) => ({ value: queued > 0 ? await listJobDerivations(job.id, { status: "queued", limit: 200 }, signal) : { items: [] } }),
    [job.id, queued, job.updatedAt],
    { intervalMs: POLL_MS * 5 },
  );
  const groups = new Map<string, number>();
  for (const { waitingForAgent: want } of waiting.value?.items ?? []) {
    if (!want) continue;
    const key = want.features.length ? `${want.system} with ${want.features.join(", ")}` : want.system;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  if (groups.size === 0) return null;
  return (
    <section class="warning" aria-labelledby="waiting">
      <h2 id="waiting">Waiting for an agent that can build them</h2>
      <ul>
        {[...groups].map(([need, n]) => (
          <li key={need}>
            {plural(n, "derivation")} need{n === 1 ? "s" : ""} <strong>{need}</strong>: no connected agent has that system and those
            features (or it requires mandatory features they lack). Connect one — see <a href="/agents">Agents</a>.
          </li>
        ))}
      </ul>
    </section>
  );
}

function AttributeErrors({ job }: { job: JobStatusView }) {
  const errors = usePoll(
    async (signal) => ({ value: await listJobAttributes(job.id, { errorsOnly: true, limit: 100 }, signal) }),
    [job.id, job.status],
    { intervalMs: POLL_MS * 5, live: () => !FINISHED.has(job.status) },
  );
  const items = errors.value?.items ?? [];
  if (items.length === 0) return null;
  return (
    <section aria-labelledby="attribute-errors">
      <h2 id="attribute-errors">Evaluation errors</h2>
      <ul class="attribute-errors">
        {items.map((a) => (
          <li key={a.path.join(".")}>
            <code>{a.path.join(".")}</code>
            <pre class="message">{a.error ?? "did not evaluate"}</pre>
          </li>
        ))}
      </ul>
      {errors.value?.cursor ? <p class="note">Only the first {items.length} are shown.</p> : null}
    </section>
  );
}

function Derivations({ job, route }: { job: JobStatusView; route: JobRoute }) {
  const total = route.status ? (job.counts[route.status] ?? 0) : Object.values(job.counts).reduce((sum, n) => sum + (n ?? 0), 0);
  const finished = FINISHED.has(job.status);
  // A small list follows every change; a long one keeps its rows (and scroll) until asked.
  const [generation, setGeneration] = useState(0);
  const counts = JSON.stringify(job.counts);
  const liveKey = total <= LIVE_LIST_LIMIT ? counts : "";
  const { source, loadedCounts } = useMemo(
    () => ({
      source: new HashRangeSource<JobDerivationView>(
        total,
        (range, cursor, signal) => listJobDerivations(job.id, { status: route.status, range, cursor }, signal),
        (row) => storeHash(row.drvPath),
      ),
      loadedCounts: counts,
    }),
    [job.id, route.status, finished, generation, liveKey],
  );
  useEffect(() => () => source.dispose(), [source]);
  const stale = !finished && counts !== loadedCounts;

  return (
    <section aria-labelledby="derivations-heading">
      <h2 id="derivations-heading" class="visually-hidden">
        Derivations
      </h2>
      <StatusFilter job={job} route={route} />
      {stale ? (
        <p class="note">
          Statuses have changed since this list was loaded.{" "}
          <button type="button" onClick={() => setGeneration((g) => g + 1)}>
            Refresh the list
          </button>
        </p>
      ) : null}
      <VirtualList
        id="derivation"
        source={source}
        rowHeight={ROW_HEIGHT}
        label={route.status ? `${route.status} derivations` : "derivations"}
        renderRow={(row) => <DerivationRow row={row} />}
        rowHref={(row) => routeHref({ page: "derivation", drv: drvBasename(row.drvPath), job: job.id })}
        empty={route.status ? `No ${route.status} derivations.` : job.status === "evaluating" ? "Evaluating…" : "No derivations."}
      />
    </section>
  );
}

function StatusFilter({ job, route }: { job: JobStatusView; route: JobRoute }) {
  const all = Object.values(job.counts).reduce((sum, n) => sum + (n ?? 0), 0);
  const link = (status: DerivationStatus | undefined, label: string, n: number) => (
    <a
      key={label}
      class="chip"
      href={routeHref({ page: "job", jobId: job.id, tab: "derivations", status })}
      aria-current={route.status === status ? "true" : undefined}
    >
      {label} <span class="count">{n.toLocaleString("en")}</span>
    </a>
  );
  return (
    <nav class="chips" aria-label="Filter by status">
      {link(undefined, "all", all)}
      {STATUS_ORDER.filter((s) => (job.counts[s] ?? 0) > 0 || route.status === s).map((s) => link(s, s, job.counts[s] ?? 0))}
    </nav>
  );
}

function DerivationRow({ row }: { row: JobDerivationView }) {
  const detail = row.failure?.reason ?? (row.waitingForAgent ? `no agent can build ${row.waitingForAgent.system}${row.waitingForAgent.features.length ? ` with ${row.waitingForAgent.features.join(", ")}` : ""}` : "");
  return (
    <>
      <StatusBadge status={row.status} />
      <span class="name" title={row.drvPath}>
        {drvName(row.drvPath)}
      </span>
      <span class="system">
        {row.system}
        {row.requiredFeatures.length ? ` · ${row.requiredFeatures.join(", ")}` : ""}
      </span>
      <span class="agent">{row.builtBy?.hostname ?? ""}</span>
      <span class="detail">{detail}</span>
    </>
  );
}

function Attributes({ job, route }: { job: JobStatusView; route: JobRoute }) {
  const finished = FINISHED.has(job.status);
  const source: RowSource<AttributeView> = useMemo(
    () =>
      new CursorSource<AttributeView>(
        (cursor, signal) => listJobAttributes(job.id, { prefix: route.prefix, cursor }, signal),
        (a) => JSON.stringify(a.path),
      ),
    [job.id, route.prefix, finished],
  );
  useEffect(() => () => source.dispose(), [source]);
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const prefix = String(new FormData(event.currentTarget as HTMLFormElement).get("prefix") ?? "").trim() || undefined;
    navigate(routeHref({ page: "job", jobId: job.id, tab: "attributes", prefix }), { replace: true });
  };
  const segments = route.prefix ? route.prefix.split(".") : [];
  return (
    <section aria-labelledby="attributes-heading">
      <h2 id="attributes-heading" class="visually-hidden">
        Attributes
      </h2>
      <form class="filters" role="search" onSubmit={onSubmit} key={route.prefix ?? ""}>
        <label>
          Attribute path starts with
          <input name="prefix" defaultValue={route.prefix ?? ""} placeholder="packages.x86_64-linux" autoComplete="off" spellcheck={false} />
        </label>
        <button type="submit">Filter</button>
      </form>
      {segments.length > 0 ? (
        <nav class="breadcrumbs" aria-label="Attribute path">
          <a href={routeHref({ page: "job", jobId: job.id, tab: "attributes" })}>all</a>
          {segments.map((segment, i) => (
            <span key={i}>
              {" . "}
              <a href={routeHref({ page: "job", jobId: job.id, tab: "attributes", prefix: segments.slice(0, i + 1).join(".") })}>{segment}</a>
            </span>
          ))}
        </nav>
      ) : null}
      <VirtualList
        id="attribute"
        source={source}
        rowHeight={ROW_HEIGHT}
        label="attributes"
        renderRow={(a) => <AttributeRow attribute={a} />}
        rowHref={(a) => (a.drvPath ? routeHref({ page: "derivation", drv: drvBasename(a.drvPath), job: job.id }) : undefined)}
        empty={route.prefix ? `No attribute path starts with ${route.prefix}.` : "No attributes."}
      />
    </section>
  );
}

function AttributeRow({ attribute }: { attribute: AttributeView }) {
  const depth = attribute.path.length - 1;
  return (
    <>
      <StatusBadge status={attribute.status} />
      <span class="name attribute" style={{ paddingInlineStart: `${depth}ch` }} title={attribute.path.join(".")}>
        {attribute.path.join(".")}
      </span>
      <span class="detail">{attribute.error ?? (attribute.drvPath ? drvName(attribute.drvPath) : "")}</span>
    </>
  );
}
