/**
 * netrc files: how Nix (through curl) authenticates to HTTP caches (`netrc-file` setting).
 * The agent writes one for its authenticated caches, in a private directory, mode 0600.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

export interface NetrcEntry {
  /** A host name (curl matches the host only, not the port); undefined for `default`. */
  machine: string | undefined;
  login?: string;
  password?: string;
}

/** Parses netrc text (machine/default/login/password/account; macdef bodies are skipped). */
export function parseNetrc(text: string): NetrcEntry[] {
  const entries: NetrcEntry[] = [];
  const lines = text.split("\n");
  let current: NetrcEntry | undefined;
  for (let l = 0; l < lines.length; l++) {
    const line = lines[l]!;
    if (/^\s*#/.test(line)) continue;
    const tokens = line.trim().split(/\s+/).filter(Boolean);
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      if (token === "machine") {
        current = { machine: tokens[++i] };
        entries.push(current);
      } else if (token === "default") {
        current = { machine: undefined };
        entries.push(current);
      } else if (token === "login" && current) current.login = tokens[++i];
      else if (token === "password" && current) current.password = tokens[++i];
      else if (token === "account") i++;
      else if (token === "macdef") {
        // A macro runs to the next empty line.
        while (l + 1 < lines.length && lines[l + 1]!.trim() !== "") l++;
        break;
      }
    }
  }
  return entries;
}

/** The credentials curl would use for `host`: its `machine` entry, else `default`. */
export function netrcCredentials(entries: readonly NetrcEntry[], host: string): { login: string; password: string } | undefined {
  const entry = entries.find((e) => e.machine === host) ?? entries.find((e) => e.machine === undefined);
  if (entry?.password === undefined) return undefined;
  return { login: entry.login ?? "", password: entry.password };
}

const NETRC_TOKEN = /^[^\s#"]+$/;

export function formatNetrc(entries: readonly NetrcEntry[]): string {
  return entries
    .map((e) => {
      for (const value of [e.machine, e.login, e.password]) {
        if (value !== undefined && !NETRC_TOKEN.test(value)) throw new Error("netrc values must not contain spaces, quotes or #");
      }
      const parts = [e.machine === undefined ? "default" : `machine ${e.machine}`];
      if (e.login !== undefined) parts.push(`login ${e.login}`);
      if (e.password !== undefined) parts.push(`password ${e.password}`);
      return `${parts.join(" ")}\n`;
    })
    .join("");
}

/**
 * Writes `text` as `<directory>/netrc`, the directory made 0700 and the file 0600, so neither
 * builders (other users) nor anyone else can read the tokens in it. Returns the file's path.
 */
export async function writePrivateNetrc(directory: string, text: string): Promise<string> {
  await mkdir(directory, { recursive: true, mode: 0o700 });
  await chmod(directory, 0o700);
  const file = path.join(directory, "netrc");
  await writeFile(file, text, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}
