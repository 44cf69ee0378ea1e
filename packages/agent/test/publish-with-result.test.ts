/** A build's outputs uploaded to the built-in cache go with its result to be published, unless the result's frame cannot hold them. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CachePushError } from "@nimbus/cache";
import { type AgentMessage, type CacheReport, type UploadedPath } from "@nimbus/protocol";
import { BuildLogStream } from "../src/build-log.ts";
import { publishWithResult, type Pushed } from "../src/tasks/build.ts";
import type { TaskContext } from "../src/tasks/task-kind.ts";

const task = { taskId: "b-1-0", drvPath: "/nix/store/00000000000000000000000000000000-x.drv" };
const outputs = { out: "/nix/store/11111111111111111111111111111111-x" };
const claim: UploadedPath = {
  storePath: outputs.out,
  fileHash: `sha256:${"1".repeat(52)}`,
  fileSize: 10,
  compression: "zstd",
  narHash: `sha256:${"2".repeat(52)}`,
  narSize: 20,
  references: [],
};
const nimbus: Pushed = { report: { cache: "nimbus", status: "pushed", paths: 1, alreadyPresent: 0 }, unpublished: [claim] };

function setup(publish: (claims: UploadedPath[]) => Promise<void>) {
  const sent: AgentMessage[] = [];
  const warned: string[] = [];
  const published: UploadedPath[][] = [];
  const client = { cache: "nimbus", publish: async (claims: UploadedPath[]) => (published.push(claims), publish(claims)) };
  const context = { caches: { clients: [client] }, signal: new AbortController().signal, log: (_level: string, text: string) => warned.push(text) } as unknown as Pick<TaskContext, "caches" | "signal" | "log">;
  const log = new BuildLogStream({ send: (m) => sent.push(m), sendNow: (m) => (sent.push(m), true) }, task.taskId);
  return { context, log, sent, warned, published };
}

/** Reports of other caches whose reasons fill the result's frame. */
const bulky: Pushed[] = Array.from({ length: 20 }, (_, i) => ({ report: { cache: `web${i}`, status: "failed", reason: "x".repeat(1900) } }));

describe("publishWithResult", () => {
  it("the result carries the claims: nothing is completed apart", async () => {
    const s = setup(async () => assert.fail("not completed apart"));
    const { caches, publish } = await publishWithResult(task, outputs, [nimbus], s.context, s.log);
    assert.deepEqual(publish, [claim]);
    assert.deepEqual(caches, [nimbus.report]);
    assert.deepEqual(s.published, []);
  });

  it("claims that would not fit the result's frame are completed first, and the result carries none", async () => {
    const s = setup(async () => undefined);
    const { caches, publish } = await publishWithResult(task, outputs, [nimbus, ...bulky], s.context, s.log);
    assert.equal(publish, undefined);
    assert.deepEqual(s.published, [[claim]]);
    assert.deepEqual(caches[0], nimbus.report);
  });

  it("a refusal of that completion is the cache's report, in the build's log and the agent's", async () => {
    const s = setup(async () => {
      throw new CachePushError("nimbus", `${claim.storePath} was refused: no`);
    });
    const { caches, publish } = await publishWithResult(task, outputs, [nimbus, ...bulky], s.context, s.log);
    assert.equal(publish, undefined);
    const failed: CacheReport = { cache: "nimbus", status: "failed", reason: `cache "nimbus" refused the push: ${claim.storePath} was refused: no` };
    assert.deepEqual(caches[0], failed);
    s.log.flush();
    assert.match(JSON.stringify(s.sent), /nimbus: push to nimbus failed: cache \\"nimbus\\" refused the push/);
    assert.match(s.warned.join("\n"), /push to nimbus failed/);
  });
});
