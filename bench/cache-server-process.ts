/**
 * The bench's HTTP cache in its own process, as a remote cache would be: the client being
 * measured does not share its event loop. Prints `{"url", "control"}` as one JSON line; the
 * control server answers GET /counts and POST /reset.
 * Usage: cache-server-process.ts <directory> <latency ms>
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { startHttpBinaryCache } from "../test/support/http-binary-cache.ts";

const [dir, latency] = process.argv.slice(2);
const cache = await startHttpBinaryCache({ dir: dir!, latencyMs: Number(latency ?? 0) });
const control = createServer((req, res) => {
  if (req.method === "POST" && req.url === "/reset") cache.resetCounts();
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(cache.counts));
});
await new Promise<void>((resolve) => control.listen(0, "127.0.0.1", resolve));
process.stdout.write(`${JSON.stringify({ url: cache.url, control: `http://127.0.0.1:${(control.address() as AddressInfo).port}` })}\n`);
process.on("SIGTERM", () => process.exit(0));
