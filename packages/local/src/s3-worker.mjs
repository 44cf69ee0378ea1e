// fauxqs's S3 on a thread of its own (packages/local/src/s3.ts): NAR uploads, reads and the
// writes of its file persistence (synchronous in fauxqs) then run beside the handlers instead of
// blocking the main thread they share. Plain JavaScript, so the thread needs no TypeScript loader.
import { parentPort, workerData } from "node:worker_threads";

// fauxqs loads node:sqlite, whose ExperimentalWarning the thread would print on every start
// (the main thread's filter, packages/cli/bin/nimbus.js, is not the thread's): fauxqs only after it.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => (String(warning).includes("SQLite is an experimental feature") ? undefined : emitWarning(warning, ...rest));
const { buildApp } = await import("fauxqs");

const { host, port, storageDir } = workerData;

/** fauxqs does not export its stores; they sit beside its entry point. */
const fauxqsPart = (relative) => import(new URL(relative, import.meta.resolve("fauxqs")).href);

let app;
let persistence;
try {
  const { S3Store } = await fauxqsPart("./s3/s3Store.js");
  const { FileS3Persistence } = await fauxqsPart("./s3/fileS3Persistence.js");
  const s3Store = new S3Store();
  persistence = new FileS3Persistence(storageDir);
  // Load before attaching, as fauxqs does: attaching first would write every object back.
  persistence.loadS3(s3Store);
  s3Store.persistence = persistence;
  app = buildApp({ logger: false, defaultRegion: "us-east-1", stores: { s3Store } });
  const address = await app.listen({ port, host });
  parentPort.postMessage({ type: "listening", port: Number(new URL(address).port) });
} catch (error) {
  parentPort.postMessage({ type: "error", message: error instanceof Error ? error.message : String(error), code: error?.code });
}

parentPort.on("message", async (message) => {
  // A fault for tests (s3.ts crashS3): an error nothing catches ends the thread.
  if (message?.type === "crash") throw new Error(message.reason);
  if (message?.type !== "stop") return;
  let failure;
  try {
    await app?.close();
    persistence?.close?.();
  } catch (error) {
    failure = error instanceof Error ? error.message : String(error);
  }
  parentPort.postMessage({ type: "stopped", ...(failure ? { message: failure } : {}) });
  parentPort.close();
});
