/**
 * Path registration asked of one long-lived `nix-store --serve` (the protocol Nix speaks to
 * `ssh://` stores) instead of a `nix-store --dump-db` process per push: a build's outputs are
 * described without starting Nix again. Its path-info cache is off (TTLs of 0), so every answer
 * is read from the store's database as it is now. Any trouble (the process gone, an answer not
 * understood) stops it and answers undefined: the caller asks `nix-store --dump-db` instead,
 * and the next query starts a new one.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import type { LocalPathInfo, PathInfoSource } from "./local-store.ts";

const SERVE_MAGIC_1 = 0x390c9deb;
const SERVE_MAGIC_2 = 0x5452eecb;
/** Protocol 2.4 and later answer path infos with their NarHash. */
const CLIENT_VERSION = 0x204;
const CMD_QUERY_PATH_INFOS = 2;
/** An answer larger than this is not believed (a store path's references are far fewer). */
const MAX_STRING_BYTES = 64 * 1024 * 1024;

class ServeProtocolError extends Error {}

/** Bytes as they arrive, read as the serve protocol's u64 integers and padded strings. */
class Incoming {
  private buffer: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private ended: Error | undefined;

  push(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    this.wake();
  }

  end(error: Error): void {
    this.ended = error;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  private async take(length: number): Promise<Buffer> {
    while (this.buffer.length < length) {
      if (this.ended) throw this.ended;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    const bytes = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return bytes;
  }

  async int(): Promise<number> {
    const value = (await this.take(8)).readBigUInt64LE();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ServeProtocolError("an integer out of range");
    return Number(value);
  }

  async string(): Promise<string> {
    const length = await this.int();
    if (length > MAX_STRING_BYTES) throw new ServeProtocolError(`a string of ${length} bytes`);
    const bytes = await this.take(length + ((8 - (length % 8)) % 8));
    return bytes.subarray(0, length).toString("utf8");
  }

  async strings(): Promise<string[]> {
    const count = await this.int();
    const values: string[] = [];
    for (let i = 0; i < count; i++) values.push(await this.string());
    return values;
  }
}

const int = (n: number) => {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(n));
  return bytes;
};
const string = (s: string) => {
  const bytes = Buffer.from(s, "utf8");
  return Buffer.concat([int(bytes.length), bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8)]);
};

interface Connection {
  child: ChildProcessWithoutNullStreams;
  incoming: Incoming;
  ready: Promise<void>;
}

/** One `nix-store --serve` child, asked one query at a time, started on first use. */
export class NixServePathInfos implements PathInfoSource {
  private connection: Connection | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  pathInfos(storePaths: readonly string[]): Promise<Map<string, LocalPathInfo> | undefined> {
    const run = this.queue.then(() => this.query(storePaths));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Ends the child; later queries answer undefined. */
  close(): void {
    this.closed = true;
    this.stop();
  }

  private stop(): void {
    const connection = this.connection;
    this.connection = undefined;
    if (!connection) return;
    connection.incoming.end(new ServeProtocolError("stopped"));
    connection.child.stdin.destroy();
    connection.child.kill();
  }

  private async query(storePaths: readonly string[]): Promise<Map<string, LocalPathInfo> | undefined> {
    if (this.closed) return undefined;
    try {
      const connection = (this.connection ??= this.open());
      await connection.ready;
      connection.child.stdin.write(Buffer.concat([int(CMD_QUERY_PATH_INFOS), int(storePaths.length), ...storePaths.map(string)]));
      const infos = new Map<string, LocalPathInfo>();
      const { incoming } = connection;
      for (;;) {
        const storePath = await incoming.string();
        if (storePath === "") return infos;
        const deriver = await incoming.string();
        const references = await incoming.strings();
        await incoming.int(); // downloadSize
        const narSize = await incoming.int();
        const narHash = await incoming.string();
        await incoming.string(); // ca
        await incoming.strings(); // sigs
        if (!narHash.startsWith("sha256:")) throw new ServeProtocolError(`a NarHash "${narHash.slice(0, 80)}"`);
        infos.set(storePath, { storePath, narHash, narSize, references, deriver: deriver === "" ? undefined : deriver });
      }
    } catch {
      this.stop();
      return undefined;
    }
  }

  private open(): Connection {
    const child = spawn(
      "nix-store",
      ["--serve", "--option", "narinfo-cache-positive-ttl", "0", "--option", "narinfo-cache-negative-ttl", "0"],
      { env: this.env, stdio: ["pipe", "pipe", "pipe"] },
    );
    const incoming = new Incoming();
    child.stdout.on("data", (chunk: Buffer) => incoming.push(chunk));
    child.stderr.resume();
    child.on("error", (error) => incoming.end(error));
    child.on("close", () => incoming.end(new ServeProtocolError("nix-store --serve exited")));
    child.stdin.on("error", (error) => incoming.end(error));
    const ready = (async () => {
      child.stdin.write(Buffer.concat([int(SERVE_MAGIC_1), int(CLIENT_VERSION)]));
      if ((await incoming.int()) !== SERVE_MAGIC_2) throw new ServeProtocolError("not the serve protocol");
      await incoming.int(); // the server's version
    })();
    ready.catch(() => undefined);
    return { child, incoming, ready };
  }
}
