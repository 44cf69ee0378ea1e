/** `/agents`: connected agents — what they can build, their caches and store, how busy they are, what they run. */
import type { AgentList, AgentView } from "@nimbus/protocol";
import { listAgents } from "../api/endpoints.ts";
import { ErrorNote } from "../components/error-note.tsx";
import { Ago, useNow } from "../components/time.tsx";
import { drvName } from "../format.ts";
import { usePoll } from "../live/use-poll.ts";
import { drvBasename, routeHref } from "../routes.ts";

const POLL_MS = 5_000;

export function AgentsPage() {
  const now = useNow();
  const agents = usePoll<AgentList>((signal, cached) => listAgents(signal, cached), [], { intervalMs: POLL_MS });
  const list = agents.value?.agents;
  return (
    <section>
      <h1>Agents</h1>
      <ErrorNote error={agents.error} what="the agents" />
      {list === undefined && !agents.error ? <p class="note">Loading…</p> : null}
      {list?.length === 0 ? (
        <p class="note">
          No agent is connected. Create a join token with <code>npx nimbus token create</code> and start one with{" "}
          <code>npx nimbus agent --config agent.toml</code> (README, “Configure an agent”).
        </p>
      ) : null}
      {list && list.length > 0 ? (
        <table class="agents">
          <thead>
            <tr>
              <th scope="col">Host</th>
              <th scope="col">Systems</th>
              <th scope="col">Features</th>
              <th scope="col">Mandatory</th>
              <th scope="col">Labels</th>
              <th scope="col">Caches</th>
              <th scope="col">Load</th>
              <th scope="col">Last heartbeat</th>
              <th scope="col">Running</th>
            </tr>
          </thead>
          <tbody>
            {list.map((agent) => (
              <tr key={agent.connectionId}>
                <th scope="row">
                  {agent.hostname}
                  {agent.draining ? <span class="note"> (stopping)</span> : null}
                  {agent.storeId ? (
                    <div class="note" title="agents with the same store id share one Nix store">
                      store <code>{agent.storeId}</code>
                    </div>
                  ) : null}
                </th>
                <td>{agent.systems.join(", ")}</td>
                <td>{agent.systemFeatures.join(", ") || "—"}</td>
                <td>{agent.mandatoryFeatures.join(", ") || "—"}</td>
                <td>
                  {Object.entries(agent.labels).map(([k, v]) => (
                    <span class="label" key={k}>
                      {k}={typeof v === "string" ? v : JSON.stringify(v)}
                    </span>
                  ))}
                </td>
                <td>
                  <Caches agent={agent} now={now} />
                </td>
                <td>
                  <meter min={0} max={agent.concurrentTasks} value={agent.runningTasks} aria-label={`${agent.runningTasks} of ${agent.concurrentTasks} task slots in use`} />{" "}
                  {agent.runningTasks}/{agent.concurrentTasks}
                </td>
                <td>
                  <Ago at={agent.lastSeen} now={now} />
                </td>
                <td>
                  <Tasks agent={agent} now={now} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}

/** Its binary caches (name, kind, whether it reads and pushes), each with the last problem it had, if any. */
function Caches({ agent, now }: { agent: AgentView; now: number }) {
  const caches = agent.caches ?? [];
  const problems = new Map((agent.cacheProblems ?? []).map((p) => [p.cache, p]));
  // Problems of caches it no longer lists (a reload), or of a machine substituter named by URL.
  const others = [...problems.values()].filter((p) => !caches.some((c) => c.name === p.cache));
  if (caches.length === 0 && others.length === 0) return <span class="note">—</span>;
  const problemOf = (cache: string) => {
    const problem = problems.get(cache);
    return problem ? (
      <span class="error">
        {problem.problem} (<Ago at={problem.at} now={now} />)
      </span>
    ) : null;
  };
  return (
    <ul class="caches">
      {caches.map((cache) => (
        <li key={cache.name}>
          <strong>{cache.name}</strong> <span class="note">{cacheUse(cache)} · {cache.kind}</span>
          {problemOf(cache.name)}
        </li>
      ))}
      {others.map((p) => (
        <li key={p.cache}>
          {p.cache}
          {problemOf(p.cache)}
        </li>
      ))}
    </ul>
  );
}

const cacheUse = (cache: { push: boolean; pull: boolean }) =>
  cache.push && cache.pull ? "reads, pushes" : cache.push ? "pushes only" : cache.pull ? "reads" : "neither reads nor pushes";

function Tasks({ agent, now }: { agent: AgentView; now: number }) {
  if (agent.tasks === undefined) return <span class="note">{agent.runningTasks > 0 ? `${agent.runningTasks} task(s)` : "idle"}</span>;
  if (agent.tasks.length === 0) return <span class="note">idle</span>;
  return (
    <ul class="tasks">
      {agent.tasks.map((task) => (
        <li key={task.taskId}>
          {task.kind === "build" && task.drvPath ? (
            <a href={routeHref({ page: "derivation", drv: drvBasename(task.drvPath), job: task.jobId })}>build {drvName(task.drvPath)}</a>
          ) : task.jobId ? (
            <a href={routeHref({ page: "job", jobId: task.jobId, tab: "derivations" })}>evaluate {task.jobId}</a>
          ) : (
            task.kind
          )}{" "}
          <span class="note">
            {task.pushing ? "pushing outputs, " : ""}since <Ago at={task.startedAt} now={now} />
          </span>
        </li>
      ))}
    </ul>
  );
}
