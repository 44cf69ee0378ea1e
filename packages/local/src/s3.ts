/**
 * S3 locally: fauxqs's S3 emulation, its objects kept as files under `<data dir>/s3` so the
 * built-in cache survives a restart. Started from fauxqs's parts rather than `startFauxqs`,
 * which always listens on 0.0.0.0: the bucket holds build outputs, and only this machine may
 * reach it. (fauxqs checks neither signatures nor checksums, and takes single uploads of at most
 * 11 MiB: docs/cache.md says what that means for the local stack.)
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { buildApp } from "fauxqs";

export interface S3Server {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

interface FauxqsS3Store {
  persistence?: unknown;
}
interface FauxqsFilePersistence {
  loadS3(store: FauxqsS3Store): void;
  close?(): void;
}

/** fauxqs does not export its stores; they sit beside its entry point. */
async function fauxqsPart<T>(relative: string): Promise<T> {
  return (await import(new URL(relative, import.meta.resolve("fauxqs")).href)) as T;
}

export async function startS3(options: { host: string; port: number; storageDir: string }): Promise<S3Server> {
  const { S3Store } = await fauxqsPart<{ S3Store: new () => FauxqsS3Store }>("./s3/s3Store.js");
  const { FileS3Persistence } = await fauxqsPart<{ FileS3Persistence: new (dir: string) => FauxqsFilePersistence }>("./s3/fileS3Persistence.js");
  const s3Store = new S3Store();
  const persistence = new FileS3Persistence(options.storageDir);
  // Load before attaching, as fauxqs does: attaching first would write every object back.
  persistence.loadS3(s3Store);
  s3Store.persistence = persistence;
  const app = buildApp({ logger: false, defaultRegion: "us-east-1", stores: { s3Store } as never });
  const address = await app.listen({ port: options.port, host: options.host });
  const port = Number(new URL(address).port);
  return {
    endpoint: `http://${options.host}:${port}`,
    port,
    stop: async () => {
      await app.close();
      persistence.close?.();
    },
  };
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
