import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { RawAgent, hello } from "./support/raw-agent.ts";
import { startTestStack } from "./support/stack.ts";

describe("the local stack keeps its data across a restart", () => {
  let dataDir: string;
  after(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("accepts a token created before the restart, with the same admin token", async () => {
    dataDir = await mkdtemp(join(tmpdir(), "nimbus-restart-"));
    const first = await startTestStack({ dataDir });
    const created = await first.createToken("survivor");
    const adminToken = first.adminToken;
    const port = first.port;
    await first.cleanup();

    const second = await startTestStack({ dataDir, port });
    try {
      assert.equal(second.adminToken, adminToken);
      const { tokens } = (await second.api("GET", "/api/tokens")).body;
      assert.ok(tokens.some((t: { id: string }) => t.id === created.id));
      const raw = await RawAgent.connect(second.agentSocketUrl, created.token);
      assert.equal((await raw.request(hello({ hostname: "after-restart" }))).type, "welcome");
      raw.close();
    } finally {
      await second.cleanup();
    }
  });
});
