/**
 * S3 locally: fauxqs's S3 emulation, its objects kept as files under `<data dir>/s3` so the
 * built-in cache survives a restart. Started from fauxqs's parts rather than `startFauxqs`,
 * which always listens on 0.0.0.0: the bucket holds build outputs, and only this machine may
 * reach it. (fauxqs checks neither signatures nor checksums, and takes single uploads of at most
 * 11 MiB: docs/cache.md says what that means for the local stack.)
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { startServerThread, type ServerThread } from "./server-thread.ts";

export interface S3Server {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts the bucket's server on a worker thread of its own (s3-worker.mjs, server-thread.ts), as
 * dynalite's is: uploads of NARs and fauxqs's synchronous file writes then do not hold up the
 * handlers on the main thread.
 */
export async function startS3(options: {
  host: string;
  port: number;
  storageDir: string;
  /** Told once if the thread fails or exits other than through `stop()`: every request to the bucket fails from then on. */
  onFailure?: (message: string) => void;
}): Promise<S3Server> {
  const { host, port, storageDir } = options;
  const thread = await startServerThread({
    script: new URL("./s3-worker.mjs", import.meta.url),
    workerData: { host, port, storageDir },
    name: "S3",
    failureMessage: (why) =>
      `S3 stopped: its thread ${why}; every upload to and read from the built-in cache fails from now on — restart the stack (the objects in ${storageDir} are kept)`,
    ...(options.onFailure ? { onFailure: options.onFailure } : {}),
  });
  const server: S3Server = { endpoint: `http://${host}:${thread.port}`, port: thread.port, stop: () => thread.stop() };
  threads.set(server, thread);
  return server;
}

const threads = new WeakMap<S3Server, ServerThread>();

/** A fault for tests: the S3 thread throws `reason`, as a crash inside it would. */
export function crashS3(server: S3Server, reason: string): void {
  threads.get(server)?.crash(reason);
}

/** Creates the bucket (again: creating an existing one is harmless here). */
export async function ensureBucket(endpoint: string, bucket: string): Promise<void> {
  const client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "local", secretAccessKey: "local" } });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((error: Error) => {
      if (error.name !== "BucketAlreadyOwnedByYou" && error.name !== "BucketAlreadyExists") throw error;
    });
  } finally {
    client.destroy();
  }
}
