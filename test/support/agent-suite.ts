import { after, afterEach, before } from "node:test";
import { connectedOn, type RawAgent } from "./raw-agent.ts";
import { startTestStack, type TestStack } from "./stack.ts";

/**
 * A local stack for a suite (call it inside `describe`) whose tests connect their own raw
 * agents, each on a system of its own: they leave with their test, as an idle one would take the
 * next test's evaluation.
 */
export function agentSuite(tokenName: string) {
  const open: RawAgent[] = [];
  let token = "";
  const suite = {
    stack: undefined as unknown as TestStack,
    /** A connected agent on `system` with `concurrentTasks` slots, its connection id and its session's. */
    async agentOn(hostname: string, system: string, concurrentTasks = 1) {
      const connected = await connectedOn(suite.stack.agentSocketUrl, token, hostname, system, concurrentTasks);
      open.push(connected.agent);
      return connected;
    },
  };
  before(async () => {
    suite.stack = await startTestStack({ sweepIntervalMs: 0 });
    token = (await suite.stack.createToken(tokenName)).token;
  });
  after(async () => {
    for (const agent of open) agent.close();
    await suite.stack?.cleanup();
  });
  afterEach(() => {
    for (const agent of open.splice(0)) agent.close();
  });
  return suite;
}
