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
import { serveConnection, serveInt as int, ServeProtocolError, serveString as string, type ServeIncoming } from "./serve-protocol.ts";

/** Protocol 2.4 and later answer path infos with their NarHash. */
const CLIENT_VERSION = 0x204;
const CMD_QUERY_PATH_INFOS = 2;

interface Connection {
  child: ChildProcessWithoutNullStreams;
  incoming: ServeIncoming;
  ready: Promise<number>;
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
    child.stderr.resume();
    return { child, ...serveConnection(child, CLIENT_VERSION) };
  }
}
