/** The local bucket's server on its own thread (s3.ts): objects kept across a restart, and a thread that dies says so. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { crashS3, ensureBucket, startS3 } from "../src/s3.ts";

const clientOf = (endpoint: string) =>
  new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "local", secretAccessKey: "local" } });

test("keeps its objects as files: a bucket started again on the same directory serves what the first stored", async () => {
  const storageDir = await mkdtemp(join(tmpdir(), "nimbus-s3-"));
  try {
    const first = await startS3({ host: "127.0.0.1", port: 0, storageDir });
    await ensureBucket(first.endpoint, "cache");
    const client = clientOf(first.endpoint);
    await client.send(new PutObjectCommand({ Bucket: "cache", Key: "nar/abc.nar.zst", Body: "the bytes" }));
    client.destroy();
    await first.stop();

    const again = await startS3({ host: "127.0.0.1", port: 0, storageDir });
    const reader = clientOf(again.endpoint);
    try {
      const object = await reader.send(new GetObjectCommand({ Bucket: "cache", Key: "nar/abc.nar.zst" }));
      assert.equal(await object.Body?.transformToString(), "the bytes");
    } finally {
      reader.destroy();
      await again.stop();
    }
  } finally {
    await rm(storageDir, { recursive: true, force: true });
  }
});

test("a thread that dies says so once, naming why, and still stops; a stop says nothing", async () => {
  const storageDir = await mkdtemp(join(tmpdir(), "nimbus-s3-"));
  const told: string[] = [];
  try {
    const crashed = await startS3({ host: "127.0.0.1", port: 0, storageDir, onFailure: (m) => told.push(m) });
    crashS3(crashed, "boom");
    for (let i = 0; i < 100 && told.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 100)); // its exit follows the error: still one message
    assert.equal(told.length, 1, told.join("\n"));
    assert.match(told[0]!, /S3 stopped: its thread failed: Error: boom; every upload to and read from the built-in cache fails from now on — restart the stack/);
    await crashed.stop();

    const stopped = await startS3({ host: "127.0.0.1", port: 0, storageDir, onFailure: (m) => told.push(m) });
    await stopped.stop();
    assert.equal(told.length, 1, "a stop is not a failure");
  } finally {
    await rm(storageDir, { recursive: true, force: true });
  }
});
