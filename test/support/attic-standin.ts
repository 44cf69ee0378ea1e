/**
 * A stand-in for an Attic server, following its published API (attic's `api/v1` types and
 * its client), because no Attic server runs here. All state lives in the test process.
 *
 *   POST /_api/v1/get-missing-paths   {cache, store_path_hashes} → {missing_paths}   (push permission)
 *   PUT  /_api/v1/upload-path         NAR body; metadata in X-Attic-Nar-Info, or as a JSON
 *                                     preamble of X-Attic-Nar-Info-Preamble-Size bytes
 *   GET|HEAD /{cache}/nix-cache-info, /{cache}/{hash}.narinfo, /{cache}/nar/{file}  (pull permission unless public)
 *
 * Tokens come as `Authorization: Bearer <token>` or Basic with the token as password (what Nix
 * sends from a netrc file). Errors are `{code, error, message}` as Attic answers them. Like
 * Attic it checks the NAR's hash and size and signs the narinfo with the cache's own key.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  AtticUploadPathNarInfo,
  formatNarinfo,
  narinfoFingerprint,
  parseSha256,
  type SecretKey,
  sha256NixBase32,
  signFingerprint,
} from "@nimbus/cache";
import { type InMemoryCache, newInMemoryCache, readBody, sendJson, serveCacheFile } from "./in-memory-cache.ts";

export interface AtticStandinCache extends InMemoryCache {
  signingKey: SecretKey;
  public: boolean;
}

export interface AtticToken {
  pull: string[];
  push: string[];
}

export interface AtticStandin {
  url: string;
  caches: Map<string, AtticStandinCache>;
  tokens: Map<string, AtticToken>;
  /** Requests by route: "missing", "upload", "read". */
  counts: Map<string, number>;
  /** How the last upload carried its metadata. */
  lastUploadVia?: "header" | "preamble";
  close(): Promise<void>;
}

export async function startAtticStandin(
  caches: Record<string, { signingKey: SecretKey; public?: boolean }>,
  tokens: Record<string, AtticToken>,
): Promise<AtticStandin> {
  const standin: AtticStandin = {
    url: "",
    caches: new Map(Object.entries(caches).map(([name, c]) => [name, { signingKey: c.signingKey, public: c.public ?? false, ...newInMemoryCache() }])),
    tokens: new Map(Object.entries(tokens)),
    counts: new Map(),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const count = (route: string) => standin.counts.set(route, (standin.counts.get(route) ?? 0) + 1);
  const fail = (res: ServerResponse, code: number, error: string, message: string) => sendJson(res, code, { code, error, message });
  const tokenOf = (req: IncomingMessage): AtticToken | undefined => {
    const auth = req.headers.authorization ?? "";
    let token: string | undefined;
    if (/^bearer /i.test(auth)) token = auth.slice(7);
    else if (/^basic /i.test(auth)) {
      const decoded = Buffer.from(auth.slice(6), "base64").toString();
      token = decoded.slice(decoded.indexOf(":") + 1);
    }
    return token === undefined ? undefined : standin.tokens.get(token);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    const token = tokenOf(req);
    if (url.pathname === "/_api/v1/get-missing-paths" && req.method === "POST") {
      count("missing");
      const body = JSON.parse((await readBody(req)).toString()) as { cache?: string; store_path_hashes?: string[] };
      const cache = standin.caches.get(body.cache ?? "");
      if (!cache) return fail(res, 404, "NoSuchCache", "The requested cache does not exist.");
      if (!token?.push.includes(body.cache!)) return fail(res, 401, "Unauthorized", "Unauthorized.");
      return sendJson(res, 200, { missing_paths: (body.store_path_hashes ?? []).filter((h) => !cache.narinfos.has(h)) });
    }
    if (url.pathname === "/_api/v1/upload-path" && req.method === "PUT") {
      count("upload");
      let body = await readBody(req);
      let infoJson: string;
      const preamble = req.headers["x-attic-nar-info-preamble-size"];
      if (typeof preamble === "string") {
        const size = Number(preamble);
        infoJson = body.subarray(0, size).toString();
        body = body.subarray(size);
        standin.lastUploadVia = "preamble";
      } else if (typeof req.headers["x-attic-nar-info"] === "string") {
        infoJson = req.headers["x-attic-nar-info"];
        standin.lastUploadVia = "header";
      } else return fail(res, 400, "RequestError", "X-Attic-Nar-Info must be set");
      const parsed = AtticUploadPathNarInfo.safeParse(JSON.parse(infoJson));
      if (!parsed.success) return fail(res, 400, "RequestError", parsed.error.message);
      const info = parsed.data;
      const cache = standin.caches.get(info.cache);
      if (!cache) return fail(res, 404, "NoSuchCache", "The requested cache does not exist.");
      if (!token?.push.includes(info.cache)) return fail(res, 401, "Unauthorized", "Unauthorized.");
      const digest = createHash("sha256").update(body).digest();
      if (!Buffer.from(parseSha256(info.nar_hash)).equals(digest) || body.length !== info.nar_size) {
        return fail(res, 400, "RequestError", "Bad NAR Hash or Size");
      }
      const narHash = sha256NixBase32(digest);
      const references = info.references.map((r) => `/nix/store/${r}`);
      const fileName = `${digest.toString("hex")}.nar`;
      cache.nars.set(fileName, body);
      cache.narinfos.set(
        info.store_path_hash,
        formatNarinfo({
          storePath: info.store_path,
          url: `nar/${fileName}`,
          compression: "none",
          narHash,
          narSize: body.length,
          references,
          deriver: info.deriver === null ? undefined : `/nix/store/${info.deriver}`,
          sigs: [signFingerprint(cache.signingKey, narinfoFingerprint({ storePath: info.store_path, narHash, narSize: body.length, references }))],
        }),
      );
      return sendJson(res, 200, { kind: "Uploaded", file_size: body.length, frac_deduplicated: 0 });
    }
    const read = /^\/([^/_][^/]*)\/(.+)$/.exec(url.pathname);
    const cache = read ? standin.caches.get(read[1]!) : undefined;
    if (read && cache && (req.method === "GET" || req.method === "HEAD")) {
      count("read");
      if (!cache.public && !token?.pull.includes(read[1]!)) return fail(res, 401, "Unauthorized", "Unauthorized.");
      if (serveCacheFile(cache, read[2]!, req, res)) return;
    }
    await readBody(req).catch(() => undefined);
    return fail(res, 404, "NotFound", "Not found.");
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) fail(res, 500, "InternalServerError", err.message);
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  standin.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return standin;
}
