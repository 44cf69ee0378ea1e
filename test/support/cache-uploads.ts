/** Uploads to the built-in cache as an agent makes them, at the protocol level: payloads, their claims, and the PUT. */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { zstdCompressSync } from "node:zlib";
import { encodeNixBase32 } from "@nimbus/cache";
import type { ServiceMessage, UploadedPath, UploadSlot } from "@nimbus/protocol";
import type { RawAgent } from "./raw-agent.ts";

export const sha = (bytes: Uint8Array) => `sha256:${encodeNixBase32(createHash("sha256").update(bytes).digest())}`;
const hashPart = () => encodeNixBase32(randomBytes(20)).slice(0, 32);
export const storePath = (name: string) => `/nix/store/${hashPart()}-${name}`;

/** A NAR-like payload and its zstd file, with the claims an honest agent would make. */
export function payload(path: string, references: string[] = [], size = 2000) {
  const nar = randomBytes(size);
  const file = zstdCompressSync(nar);
  const claim: UploadedPath = { storePath: path, fileHash: sha(file), fileSize: file.length, compression: "zstd", narHash: sha(nar), narSize: nar.length, references };
  return { nar, file, claim };
}

/** The upload slots `agent` is given for the claims' files (`cache-upload-request`). */
export async function slotsFor(agent: RawAgent, ...claims: UploadedPath[]): Promise<UploadSlot[]> {
  const files = claims.map(({ storePath, fileHash, fileSize, compression }) => ({ storePath, fileHash, fileSize, compression }));
  const answer = await agent.request({ type: "cache-upload-request", requestId: randomBytes(6).toString("hex"), files });
  assert.equal(answer.type, "cache-upload-urls", JSON.stringify(answer));
  return (answer as Extract<ServiceMessage, { type: "cache-upload-urls" }>).files;
}

/** PUTs `body` to an upload slot's URL with its headers (Content-Length as given, unless `truncate`). */
export function put(slot: UploadSlot, body: Buffer, options: { truncate?: boolean; headers?: Record<string, string> } = {}): Promise<number> {
  assert.equal(slot.status, "upload");
  const { url, headers } = slot as Extract<UploadSlot, { status: "upload" }>;
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "PUT", headers: { ...headers, "content-length": String(body.length), ...options.headers } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", (err) => (options.truncate ? resolve(0) : reject(err)));
    if (options.truncate) {
      req.write(body.subarray(0, body.length >> 1));
      setTimeout(() => req.destroy(), 100);
    } else req.end(body);
  });
}

/** Asks for the payloads' upload URLs and PUTs their files, as an agent does before it completes (or its result publishes). */
export async function uploaded(agent: RawAgent, ...payloads: Array<ReturnType<typeof payload>>): Promise<void> {
  const slots = await slotsFor(agent, ...payloads.map((p) => p.claim));
  for (const [i, slot] of slots.entries()) assert.equal(await put(slot, payloads[i]!.file), 200);
}
