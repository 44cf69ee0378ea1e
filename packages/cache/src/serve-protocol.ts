/**
 * The wire of `nix-store --serve` (the protocol Nix speaks to `ssh://` stores): u64 integers and
 * strings padded to 8 bytes, little-endian, after a greeting of magic numbers and versions.
 */
import type { ChildProcessWithoutNullStreams } from "node:child_process";

const SERVE_MAGIC_1 = 0x390c9deb;
const SERVE_MAGIC_2 = 0x5452eecb;
/** An answer larger than this is not believed (a store path's references are far fewer; a build's error is a few lines). */
const MAX_STRING_BYTES = 64 * 1024 * 1024;

export class ServeProtocolError extends Error {
  override readonly name = "ServeProtocolError";
}

/** Bytes as they arrive, read as the serve protocol's u64 integers and padded strings. */
export class ServeIncoming {
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

export function serveInt(n: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt(n));
  return bytes;
}

export function serveString(s: string): Buffer {
  const bytes = Buffer.from(s, "utf8");
  return Buffer.concat([serveInt(bytes.length), bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8)]);
}

/**
 * Feeds a `nix-store --serve` child's stdout to a reader that fails once the child is gone,
 * and greets it; resolves with the server's protocol version.
 */
export function serveConnection(child: ChildProcessWithoutNullStreams, clientVersion: number): { incoming: ServeIncoming; ready: Promise<number> } {
  const incoming = new ServeIncoming();
  child.stdout.on("data", (chunk: Buffer) => incoming.push(chunk));
  child.on("error", (error) => incoming.end(error));
  child.on("close", () => incoming.end(new ServeProtocolError("nix-store --serve exited")));
  child.stdin.on("error", (error) => incoming.end(error));
  const ready = (async () => {
    child.stdin.write(Buffer.concat([serveInt(SERVE_MAGIC_1), serveInt(clientVersion)]));
    if ((await incoming.int()) !== SERVE_MAGIC_2) throw new ServeProtocolError("not the serve protocol");
    return incoming.int();
  })();
  ready.catch(() => undefined);
  return { incoming, ready };
}
