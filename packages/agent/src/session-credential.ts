/**
 * The agent's session on the service: `<workDirectory>/session.json`, made on first start and
 * presented in every `hello`. The service keeps an agent's tasks by session, not by
 * connection, so an agent that reconnects — or crashes and starts again with the same work
 * directory — is given back what it was running (Hercules keeps `secretState/session.key`).
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { SessionCredential } from "@nimbus/protocol";
import { AgentConfigError } from "./errors.ts";

export const SESSION_FILE_NAME = "session.json";

export interface LoadedSession {
  credential: SessionCredential;
  path: string;
  /** True when this start made the file. */
  created: boolean;
  /** Set when the file can be read by other users than its owner (it holds a secret). */
  warning?: string;
}

export function newSessionCredential(): SessionCredential {
  return { id: randomBytes(16).toString("hex"), secret: randomBytes(32).toString("base64url") };
}

/**
 * Reads the session file in `workDirectory`, or makes it (mode 0600, and the directory) when
 * there is none. A file that is not a session is an `AgentConfigError` naming the file.
 */
export async function loadSessionCredential(workDirectory: string): Promise<LoadedSession> {
  const file = path.join(workDirectory, SESSION_FILE_NAME);
  const existing = await readSessionFile(file);
  if (existing !== undefined) return { ...existing, created: false };

  await mkdir(workDirectory, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    throw new AgentConfigError(`cannot create the work directory ${workDirectory} (${err.code ?? err.message})`);
  });
  const credential = newSessionCredential();
  // Written whole under another name, then linked into place: a crash never leaves half a
  // file, and a file some other start made meanwhile is never overwritten.
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(credential)}\n`, { mode: 0o600, flag: "wx" });
    await link(temporary, file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EEXIST") throw new AgentConfigError(`cannot write the session file ${file} (${code ?? String(err)})`);
    const raced = await readSessionFile(file);
    if (raced !== undefined) return { ...raced, created: false };
    throw new AgentConfigError(`cannot write the session file ${file}`);
  } finally {
    await unlink(temporary).catch(() => {});
  }
  return { credential, path: file, created: true };
}

async function readSessionFile(file: string): Promise<Omit<LoadedSession, "created"> | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw new AgentConfigError(`cannot read the session file ${file} (${code ?? String(err)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = SessionCredential.safeParse(json);
  if (!parsed.success) {
    throw new AgentConfigError(
      `the session file ${file} is not a Nimbus agent session (expected {"id": 32 hex characters, "secret": 43 base64url characters}) — ` +
        `delete it and start the agent again (a new session is made)`,
    );
  }
  const mode = (await stat(file)).mode & 0o777;
  return {
    credential: parsed.data,
    path: file,
    ...(mode & 0o077 ? { warning: `the session file ${file} can be read by other users (mode ${mode.toString(8)}): chmod 600 it` } : {}),
  };
}
