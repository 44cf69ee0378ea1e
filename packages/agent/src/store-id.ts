/**
 * Which Nix store this agent builds in, as `<hostname>/<12 hex>`: agents with the same id share
 * one store (several agents on one machine), so what one built the other has. The digest is of
 * the machine's id and the store directory's device and inode, so a second "machine" on the
 * same host — a mount namespace with its own /nix — gets another id.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";

export async function storeIdOf(hostname: string, storeDir = "/nix/store"): Promise<string> {
  const machineId = (await readFile("/etc/machine-id", "utf8").catch(() => "")).trim() || hostname;
  // A store not made yet (Nix creates it on first use): its parent stands for it.
  const where = await stat(storeDir).catch(() => stat("/nix").catch(() => undefined));
  const identity = where === undefined ? "no-store" : `${where.dev}:${where.ino}`;
  const digest = createHash("sha256").update(`${machineId}:${identity}`).digest("hex").slice(0, 12);
  // The protocol's store ids have no "/" or whitespace in the host part.
  return `${hostname.replace(/[\s/]/g, "_").slice(0, 255)}/${digest}`;
}
