/**
 * The built-in cache's bucket: NAR files under `nar/`. Agents and readers never get AWS
 * credentials, only presigned URLs for one object, one method, and a short while.
 */
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { Readable } from "node:stream";
import { s3 } from "../platform/aws-clients.ts";
import { cacheBucketName } from "../platform/linked-resources.ts";

/**
 * A PUT URL for exactly these bytes: their length and SHA-256 are signed headers the uploader
 * must send, so S3 refuses any other body (BadDigest) and keeps the SHA-256 with the object.
 */
export async function presignUpload(key: string, size: number, sha256Base64: string, expiresIn: number): Promise<{ url: string; headers: Record<string, string> }> {
  const command = new PutObjectCommand({ Bucket: cacheBucketName(), Key: key, ContentLength: size, ChecksumSHA256: sha256Base64 });
  const url = await getSignedUrl(s3(), command, {
    expiresIn,
    // Kept as headers (not hoisted into the query string): S3 checks a header's checksum, not a query parameter's.
    unhoistableHeaders: new Set(["x-amz-checksum-sha256"]),
    signableHeaders: new Set(["content-length"]),
  });
  return { url, headers: { "content-length": String(size), "x-amz-checksum-sha256": sha256Base64 } };
}

export const presignDownload = (key: string, expiresIn: number): Promise<string> =>
  getSignedUrl(s3(), new GetObjectCommand({ Bucket: cacheBucketName(), Key: key }), { expiresIn });

/** The object's size and the SHA-256 S3 checked at upload, or undefined when there is no such object. */
export async function headObject(key: string): Promise<{ size: number; sha256Base64: string | undefined } | undefined> {
  return ifFound(async () => {
    const head = await s3().send(new HeadObjectCommand({ Bucket: cacheBucketName(), Key: key, ChecksumMode: "ENABLED" }));
    return { size: head.ContentLength ?? 0, sha256Base64: head.ChecksumSHA256 };
  });
}

/** The object's size and bytes (a GET says the size a HEAD would), or undefined when there is no such object. */
export async function readObject(key: string): Promise<{ size: number; body: Readable } | undefined> {
  return ifFound(async () => {
    const object = await s3().send(new GetObjectCommand({ Bucket: cacheBucketName(), Key: key }));
    return { size: object.ContentLength ?? 0, body: object.Body as Readable };
  });
}

/** What `request` returns, or undefined when S3 says the object does not exist. */
async function ifFound<T>(request: () => Promise<T>): Promise<T | undefined> {
  try {
    return await request();
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404 || (error as Error).name === "NotFound" || (error as Error).name === "NoSuchKey") return undefined;
    throw error;
  }
}

/** Stores bytes the handler holds, with their SHA-256 (S3 checks it). */
export async function putObject(key: string, body: Uint8Array, sha256Base64: string, contentType: string): Promise<void> {
  await s3().send(new PutObjectCommand({ Bucket: cacheBucketName(), Key: key, Body: body, ChecksumSHA256: sha256Base64, ContentType: contentType }));
}

export async function deleteObject(key: string): Promise<void> {
  await s3().send(new DeleteObjectCommand({ Bucket: cacheBucketName(), Key: key }));
}
