import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RequestCounter } from "../bench/request-counter.ts";

type Middleware = (next: (args: unknown) => Promise<unknown>, context: unknown) => (args: unknown) => Promise<unknown>;

/** A client whose `send` runs the counter's middleware, as the SDK's stack would. */
function fakeClient() {
  let middleware: Middleware | undefined;
  return {
    middlewareStack: { add: (m: Middleware) => void (middleware = m) },
    send: (commandName: string, input: Record<string, unknown>) => middleware!(async () => ({ output: {} }), { commandName })({ input }),
  };
}

describe("RequestCounter: the workload's requests, not the bench's own", () => {
  it("leaves the JSON API the bench polls out of every figure, the requests by operation too", async () => {
    const counter = new RequestCounter((source) => source.startsWith("api/"));
    const client = fakeClient();
    counter.attach("dynamodb", client);
    const resolve = counter.wrapResolver(async (spec) => async () => {
      if (spec.includes("socket")) await client.send("UpdateItemCommand", { TableName: "Derivations" });
      else await client.send("QueryCommand", { TableName: "Derivations", IndexName: "byBuilding" });
      return undefined;
    });
    const frame = await resolve("functions/socket/default.handler");
    const poll = await resolve("functions/api/jobs-get.handler");
    await frame({ body: JSON.stringify({ type: "build-result" }) } as never, {} as never);
    await poll({} as never, {} as never);
    await poll({} as never, {} as never);

    const report = counter.report();
    assert.deepEqual([report.counted.total, report.excluded.total], [1, 2]);
    assert.deepEqual(report.byOperation, [{ client: "dynamodb", operation: "UpdateItem", target: "Derivations", count: 1 }], "the API's queries are not the workload's");
    assert.deepEqual(report.bySourceOperation.map((r) => r.source), ["socket/default: build-result"]);
  });
});
