/**
 * The remote builders of the agent's Nix (docs/agent.md, "Remote builders"): Nix's `builders`
 * setting, as Nix 2.8's machines.cc reads it — entries separated by newlines or `;`, `#`
 * comments, `@file` for a machines file, fields `uri systems sshKey maxJobs speedFactor
 * supportedFeatures mandatoryFeatures publicHostKey` with `-` for the default. Parsing is pure;
 * `readMachines` reads the files.
 */
import { readFile } from "node:fs/promises";

export interface RemoteMachine {
  uri: string;
  systems: string[];
  /** As Nix has it: the mandatory features are supported too. */
  supportedFeatures: string[];
  mandatoryFeatures: string[];
  maxJobs: number;
}

/** Machines of the text of `builders` (or of a machines file); `thisSystem` is what an empty systems field means. */
export function parseMachines(text: string, thisSystem: string): RemoteMachine[] {
  const machines: RemoteMachine[] = [];
  for (const raw of text.split(/[\n;]/)) {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "" || line.startsWith("@")) continue;
    const tokens = line.split(/\s+/);
    const field = (i: number) => (tokens[i] !== undefined && tokens[i] !== "" && tokens[i] !== "-" ? tokens[i] : undefined);
    const list = (i: number) => (field(i) ?? "").split(",").filter((x) => x !== "");
    const mandatoryFeatures = list(6);
    const maxJobs = field(3) === undefined ? 1 : Number.parseInt(field(3)!, 10);
    machines.push({
      uri: tokens[0]!,
      systems: field(1) === undefined ? [thisSystem] : list(1),
      supportedFeatures: [...new Set([...list(5), ...mandatoryFeatures])],
      mandatoryFeatures,
      maxJobs: Number.isFinite(maxJobs) ? maxJobs : 1,
    });
  }
  return machines;
}

/** The `@file` entries of `builders`: machines files to read. */
export const machinesFiles = (text: string): string[] =>
  text
    .split(/[\n;]/)
    .map((l) => l.replace(/#.*$/, "").trim())
    .filter((l) => l.startsWith("@"))
    .map((l) => l.slice(1).trim());

/**
 * Every remote machine of `builders`, machines files read (a missing one counts as empty, as in
 * Nix); machines with `maxJobs` 0 take no builds and are left out.
 */
export async function readMachines(builders: string, thisSystem: string): Promise<RemoteMachine[]> {
  const texts = [builders];
  for (const file of machinesFiles(builders)) texts.push(await readFile(file, "utf8").catch(() => ""));
  return texts.flatMap((t) => parseMachines(t, thisSystem)).filter((m) => m.maxJobs > 0);
}
