/**
 * The read side shared by the Cachix and Attic stand-ins: narinfos and NARs held in the test
 * process, answered as a Nix binary cache (nix-cache-info, <hash>.narinfo, nar/<file>).
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface InMemoryCache {
  narinfos: Map<string, string>;
  nars: Map<string, Buffer>;
}

export function newInMemoryCache(): InMemoryCache {
  return { narinfos: new Map(), nars: new Map() };
}

/** Answers `sub` ("nix-cache-info", "<hash>.narinfo", "nar/<file>") from `cache`; false if it is none of these. */
export function serveCacheFile(cache: InMemoryCache, sub: string, req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  let body: string | Buffer | undefined;
  let type = "application/octet-stream";
  if (sub === "nix-cache-info") {
    body = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 41\n";
    type = "text/x-nix-cache-info";
  } else if (/^[0-9a-z]{32}\.narinfo$/.test(sub)) {
    body = cache.narinfos.get(sub.slice(0, 32));
    type = "text/x-nix-narinfo";
  } else if (sub.startsWith("nar/")) {
    body = cache.nars.get(sub.slice(4));
  } else return false;
  if (body === undefined) {
    res.writeHead(404).end(req.method === "HEAD" ? undefined : "not found\n");
    return true;
  }
  res.writeHead(200, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(req.method === "HEAD" ? undefined : body);
  return true;
}

export async function readBody(req: IncomingMessage, limit = 512 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error("body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}
