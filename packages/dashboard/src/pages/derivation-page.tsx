/**
 * `/derivations/{basename}`: one derivation — status, what it needs, its history and attempts
 * (which agent, how long) and its log, followed live while it builds.
 */
import type { DerivationDetail } from "@nimbus/protocol";
import { getDerivation } from "../api/endpoints.ts";
import { ErrorNote } from "../components/error-note.tsx";
import { StatusBadge } from "../components/status.tsx";
import { Ago, useNow } from "../components/time.tsx";
import { between, drvName } from "../format.ts";
import { usePoll } from "../live/use-poll.ts";
import { LogViewer } from "../log/log-viewer.tsx";
import { drvBasename, routeHref, type Route } from "../routes.ts";

const POLL_MS = 2_000;
const SETTLED = new Set(["succeeded", "failed", "dependency-failed", "cancelled", "cached"]);

export function DerivationPage({ route }: { route: Extract<Route, { page: "derivation" }> }) {
  const now = useNow();
  const detail = usePoll<DerivationDetail>((signal, cached) => getDerivation(route.drv, signal, cached), [route.drv], {
    intervalMs: POLL_MS,
    live: (d) => !SETTLED.has(d.status),
  });
  const d = detail.value;
  const attempt = route.attempt ?? d?.attempt;
  return (
    <section class="derivation">
      <h1>
        {drvName(route.drv)} {d ? <StatusBadge status={d.status} /> : null}
      </h1>
      <p>
        <code class="path">/nix/store/{route.drv}</code>
        {route.job ? (
          <>
            {" "}
            · in job <a href={routeHref({ page: "job", jobId: route.job, tab: "derivations" })}>{route.job}</a>
          </>
        ) : null}
      </p>
      <ErrorNote error={detail.error} what="this derivation's details" />
      {d ? <Details d={d} now={now} route={route} /> : null}
      <LogViewer drv={route.drv} attempt={route.attempt} building={d?.status === "building" && (attempt === undefined || attempt === d.attempt)} />
    </section>
  );
}

function Details({ d, now, route }: { d: DerivationDetail; now: number; route: Extract<Route, { page: "derivation" }> }) {
  return (
    <>
      <dl class="facts">
        <dt>System</dt>
        <dd>
          {d.system}
          {d.requiredFeatures.length ? ` with ${d.requiredFeatures.join(", ")}` : ""}
        </dd>
        {d.builtBy ? (
          <>
            <dt>{d.status === "building" ? "Building on" : "Built by"}</dt>
            <dd>{d.builtBy.hostname}</dd>
          </>
        ) : null}
        <dt>Created</dt>
        <dd>
          <Ago at={d.createdAt} now={now} />
        </dd>
        {d.queuedAt ? (
          <>
            <dt>{d.finishedAt ? "Queued to finished" : "Queued for"}</dt>
            <dd>{between(d.queuedAt, d.finishedAt, now)}</dd>
          </>
        ) : null}
        {d.failure ? (
          <>
            <dt>Why</dt>
            <dd>
              {d.failure.reason}
              {d.failure.dependency ? (
                <>
                  {" "}
                  — input <a href={routeHref({ page: "derivation", drv: drvBasename(d.failure.dependency), job: route.job })}>{drvName(d.failure.dependency)}</a>
                </>
              ) : null}
            </dd>
          </>
        ) : null}
        {d.waitingForAgent ? (
          <>
            <dt>Waiting for</dt>
            <dd>an agent for {d.waitingForAgent.system}{d.waitingForAgent.features.length ? ` with ${d.waitingForAgent.features.join(", ")}` : ""}: none connected can build it</dd>
          </>
        ) : null}
        <dt>Outputs</dt>
        <dd>
          {Object.entries(d.outputs).map(([name, path]) => (
            <div key={name}>
              {name}: <code>{path}</code>
            </div>
          ))}
        </dd>
      </dl>
      {d.attempts.length > 0 ? (
        <section aria-labelledby="attempts">
          <h2 id="attempts">Attempts</h2>
          <table>
            <thead>
              <tr>
                <th scope="col">Attempt</th>
                <th scope="col">Agent</th>
                <th scope="col">Started</th>
                <th scope="col">Took</th>
                <th scope="col">Outcome</th>
                <th scope="col">Log</th>
              </tr>
            </thead>
            <tbody>
              {d.attempts.map((a) => (
                <tr key={a.attempt}>
                  <td>{a.attempt}</td>
                  <td>{a.agent ?? ""}</td>
                  <td>{a.startedAt ? <Ago at={a.startedAt} now={now} /> : ""}</td>
                  <td>{a.startedAt ? between(a.startedAt, a.finishedAt, now) : ""}</td>
                  <td>
                    {a.outcome ?? "building"}
                    {a.exitCode !== undefined ? ` (exit ${a.exitCode})` : ""}
                    {a.reason ? `: ${a.reason}` : ""}
                  </td>
                  <td>
                    <a
                      href={routeHref({ ...route, attempt: a.attempt })}
                      aria-current={(route.attempt ?? d.attempt) === a.attempt ? "true" : undefined}
                    >
                      attempt {a.attempt}
                    </a>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
      {d.history.length > 0 ? (
        <details>
          <summary>Status history ({d.history.length})</summary>
          <ol class="history">
            {d.history.map((e, i) => (
              <li key={i}>
                <Ago at={e.at} now={now} /> <StatusBadge status={e.status} /> attempt {e.attempt}
                {e.agent ? ` on ${e.agent}` : ""}
                {e.reason ? ` — ${e.reason}` : ""}
              </li>
            ))}
          </ol>
        </details>
      ) : null}
      {d.jobs.length > 0 ? (
        <details>
          <summary>Jobs that need it ({d.jobs.length})</summary>
          <ul>
            {d.jobs.map((id) => (
              <li key={id}>
                <a href={routeHref({ page: "job", jobId: id, tab: "derivations" })}>{id}</a>
              </li>
            ))}
          </ul>
        </details>
      ) : null}
    </>
  );
}
