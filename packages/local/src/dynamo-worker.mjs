// dynalite on a thread of its own (packages/local/src/dynamodb.ts): its request parsing and
// LevelDB work use another core than the handlers', which share the main thread. Plain
// JavaScript, so the thread needs no TypeScript loader.
import { parentPort, workerData } from "node:worker_threads";
import dynalite from "dynalite";
import { countIndexWrites } from "./index-capacity.mjs";
import { closeIteratorsOnReturn } from "./level-iterator-return.mjs";

// Before any request: each Query and Scan then closes its LevelDB iterator (level-iterator-return.mjs),
// and a write's reported capacity counts its indexes' writes as DynamoDB's does (index-capacity.mjs).
closeIteratorsOnReturn();
countIndexWrites();

const { path, host, port } = workerData;
// Tables are usable at once: nothing locally waits for CREATING → ACTIVE.
const server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.once("error", (error) => parentPort.postMessage({ type: "error", message: error.message, code: error.code }));
server.listen(port, host, () => parentPort.postMessage({ type: "listening", port: server.address().port }));

parentPort.on("message", (message) => {
  // A fault for tests (dynamodb.ts crashDynamo): an error nothing catches ends the thread.
  if (message?.type === "crash") throw new Error(message.reason);
  if (message?.type !== "stop") return;
  // close() also closes LevelDB, so a later start can open the same directory; SDK clients
  // keep connections alive, which would hold close() open.
  server.close((error) => {
    parentPort.postMessage({ type: "stopped", ...(error ? { message: error.message } : {}) });
    parentPort.close();
  });
  server.closeAllConnections();
});
