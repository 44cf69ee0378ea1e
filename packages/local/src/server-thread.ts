/**
 * An emulator's server on a worker thread of its own (dynalite: dynamodb.ts; the bucket: s3.ts):
 * its work runs beside the handlers on the main thread instead of queueing behind them. The
 * thread's script is plain JavaScript (no TypeScript loader in the thread) and speaks
 * ThreadMessage: `listening` once it serves, `error` if it cannot, `stopped` after a `stop`; a
 * `crash` message makes it throw (a fault for tests).
 */
import { Worker } from "node:worker_threads";

type ThreadMessage = { type: "listening"; port: number } | { type: "error"; message: string; code?: string } | { type: "stopped"; message?: string };

export interface ServerThread {
  port: number;
  /** Stops the server (and what it keeps open) and waits for the thread to end. */
  stop(): Promise<void>;
  /** A fault for tests: the thread throws `reason`, as a crash inside it would. */
  crash(reason: string): void;
}

export async function startServerThread(options: {
  script: URL;
  workerData: { host: string; port: number } & Record<string, unknown>;
  /** Names the server in errors ("dynalite", "S3"). */
  name: string;
  /** What a thread that dies after its start says, given why. */
  failureMessage: (why: string) => string;
  /** Told once if the thread fails or exits other than through `stop()`: every request fails from then on. */
  onFailure?: (message: string) => void;
}): Promise<ServerThread> {
  const { host, port: wanted } = options.workerData;
  const worker = new Worker(options.script, { workerData: options.workerData, execArgv: [] });
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`${options.name}'s thread exited (code ${code}) before it listened`)));
    worker.on("message", (message: ThreadMessage) => {
      if (message.type === "listening") resolve(message.port);
      if (message.type === "error") reject(Object.assign(new Error(`${options.name} could not listen on ${host}:${wanted}: ${message.message}`), { code: message.code }));
    });
  }).catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });
  // After a start, a thread that dies says so: without this, requests just fail (ECONNREFUSED) with no cause anywhere.
  let stopping = false;
  let failed = false;
  const fail = (why: string) => {
    if (stopping || failed) return;
    failed = true;
    options.onFailure?.(options.failureMessage(why));
  };
  worker.on("error", (error) => fail(`failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`));
  worker.on("exit", (code) => fail(`exited (code ${code})`));
  return {
    port,
    stop: async () => {
      stopping = true;
      const stopped = new Promise<ThreadMessage>((resolve) => worker.on("message", (m: ThreadMessage) => m.type === "stopped" && resolve(m)));
      worker.postMessage({ type: "stop" });
      const message = await Promise.race([stopped, exited.then(() => undefined)]);
      await exited;
      if (message?.type === "stopped" && message.message) throw new Error(`stopping ${options.name} failed: ${message.message}`);
    },
    crash: (reason) => worker.postMessage({ type: "crash", reason }),
  };
}
