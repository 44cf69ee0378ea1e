/**
 * A plain Nix HTTP binary cache over a directory, as the tests' "remote" cache: GET and HEAD
 * serve files, PUT stores them (what `nix copy --to http://…` sends). It can add latency to
 * every request, refuse writes, require Basic credentials, and counts what it was asked.
 */
import { createReadStream } from "node:fs";
import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";

export interface HttpBinaryCacheOptions {
  /** The directory served (created if missing). */
  dir: string;
  /** Added before answering each request. */
  latencyMs?: number;
  /** Answer every PUT with 403 and this text. */
  rejectWrites?: string;
  /** Require Basic credentials with this password (any login). */
  password?: string;
  /** Keep the PUTs it picks waiting (counted in `held`), once their body arrived, until it is set undefined again. */
  holdWrites?: (urlPath: string, body: Buffer) => boolean;
}

export interface RequestCounts {
  GET: number;
  HEAD: number;
  PUT: number;
  narinfo: number;
  total: number;
}

export interface HttpBinaryCache {
  url: string;
  dir: string;
  counts: RequestCounts;
  /** PUTs waiting now because of `holdWrites`. */
  held(): number;
  resetCounts(): void;
  set(options: Partial<Omit<HttpBinaryCacheOptions, "dir">>): void;
  close(): Promise<void>;
}

const NIX_CACHE_INFO = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n";

export async function startHttpBinaryCache(initial: HttpBinaryCacheOptions): Promise<HttpBinaryCache> {
  const options = { ...initial };
  const dir = path.resolve(options.dir);
  await mkdir(dir, { recursive: true });
  const zero = (): RequestCounts => ({ GET: 0, HEAD: 0, PUT: 0, narinfo: 0, total: 0 });
  const counts = zero();
  let tmpCounter = 0;
  let held = 0;
  let release: Array<() => void> = [];

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    counts.total++;
    if (req.method === "GET" || req.method === "HEAD" || req.method === "PUT") counts[req.method]++;
    const urlPath = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (urlPath.endsWith(".narinfo")) counts.narinfo++;
    if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));
    if (options.password !== undefined) {
      const auth = req.headers.authorization ?? "";
      const decoded = auth.startsWith("Basic ") ? Buffer.from(auth.slice(6), "base64").toString() : "";
      if (decoded.slice(decoded.indexOf(":") + 1) !== options.password) {
        req.resume();
        res.writeHead(401, { "www-authenticate": 'Basic realm="cache"' }).end("credentials required\n");
        return;
      }
    }
    const file = path.join(dir, urlPath);
    if (!file.startsWith(`${dir}${path.sep}`) || urlPath.includes("\0")) {
      req.resume();
      res.writeHead(400).end("bad path\n");
      return;
    }
    if (req.method === "PUT") {
      if (options.rejectWrites !== undefined) {
        req.resume();
        res.writeHead(403).end(`${options.rejectWrites}\n`);
        return;
      }
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      if (options.holdWrites?.(urlPath, Buffer.concat(chunks))) {
        held++;
        await new Promise<void>((resolve) => release.push(resolve));
        held--;
      }
      await mkdir(path.dirname(file), { recursive: true });
      // Whole files only: a reader never sees half a narinfo.
      const tmp = `${file}.tmp-${process.pid}-${tmpCounter++}`;
      await writeFile(tmp, Buffer.concat(chunks));
      await rename(tmp, file);
      res.writeHead(201).end();
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      req.resume();
      res.writeHead(405).end();
      return;
    }
    const size = await stat(file).then((s) => (s.isFile() ? s.size : undefined), () => undefined);
    if (size === undefined) {
      // A fresh cache still answers nix-cache-info, as a configured server would.
      if (urlPath === "/nix-cache-info") {
        res.writeHead(200, { "content-type": "text/x-nix-cache-info" }).end(req.method === "HEAD" ? undefined : NIX_CACHE_INFO);
        return;
      }
      res.writeHead(404).end(req.method === "HEAD" ? undefined : "not found\n");
      return;
    }
    res.writeHead(200, { "content-length": size });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err.message));
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    dir,
    counts,
    resetCounts: () => Object.assign(counts, zero()),
    held: () => held,
    set: (changes) => {
      Object.assign(options, changes);
      if (!options.holdWrites) for (const resolve of release.splice(0)) resolve();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const waiting of release.splice(0)) waiting();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
