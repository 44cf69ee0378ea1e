import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AgentList } from "@nimbus/protocol";
import { startAgentProcess, type AgentProcess } from "./support/agent-process.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// A gateway that ends every connection after 1.5 s, as API Gateway does after 2 hours.
describe("an agent reconnects by itself when the gateway ends its connection", () => {
  let stack: TestStack;
  let agent: AgentProcess;

  before(async () => {
    stack = await startTestStack({ connectionLifetimeMs: 1500 });
  });
  after(async () => {
    agent?.child.kill("SIGKILL");
    await stack.cleanup();
  });

  it("comes back on a new connection, again and again, and stops cleanly on SIGTERM", async () => {
    const { token } = await stack.createToken("reconnecting");
    agent = await startAgentProcess(stack.url, token, `[labels]\nrole = "reconnect"`);
    const seen = new Set<string>();
    await eventually(
      async () => {
        const { agents } = AgentList.parse((await stack.api("GET", "/api/agents")).body);
        for (const a of agents) if (a.labels.role === "reconnect") seen.add(a.connectionId);
        return seen.size >= 3 ? true : undefined;
      },
      `three successive connections of one agent (output: ${agent.output()})`,
      20_000,
    );
    assert.equal(agent.child.exitCode, null, "the agent kept running through the reconnects");
    agent.child.kill("SIGTERM");
    assert.equal(await agent.exited, 0);
    await eventually(
      async () => {
        const { agents } = AgentList.parse((await stack.api("GET", "/api/agents")).body);
        return agents.some((a) => a.labels.role === "reconnect") ? undefined : true;
      },
      "the stopped agent to leave the list",
    );
  });
});
