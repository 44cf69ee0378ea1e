/**
 * What a build task is, apart from how it is dispatched and reported: its id, what its session
 * records, the message the agent gets, and what an agent must reach to take it. Used by the
 * build task kind (flow/tasks/build.ts) and by a hand-over (flow/hand-over.ts).
 */
import { buildNeeds, type BuildNeeds } from "@nimbus/core";
import { BuildTask, MAX_FRAME_BYTES } from "@nimbus/protocol";
import { z } from "zod";
import { hexDigest } from "../../platform/hex-digest.ts";
import { derivationInputsOf } from "../../storage/derivation-inputs.ts";
import { getDerivations } from "../../storage/derivations.ts";
import type { DerivationItem } from "../../storage/items.ts";

/** What a session records of a build it holds. */
export const BuildRecord = z.strictObject({
  kind: z.literal("build"),
  drvPath: z.string(),
  attempt: z.number(),
  startedAt: z.string(),
  /** Nix is done with it and the agent pushes its outputs (`build-pushing`): its slot is free, its lease held until the result. */
  pushing: z.literal(true).optional(),
});
export type BuildRecord = z.infer<typeof BuildRecord>;

/** A build's task id: its derivation and attempt, so a retry is a new task. */
export const buildTaskId = (drvPath: string, attempt: number) => `b-${hexDigest(drvPath, 16)}-${attempt}`;

/** The derivation's lease while a session builds it. */
export type BuildLease = NonNullable<DerivationItem["lease"]>;

/**
 * A build of `drv` started `now`: its task id, the session's record of it, and the lease its
 * derivation gets for a session — the same whether a dispatch or a hand-over starts it.
 */
export function buildStart(drv: Pick<DerivationItem, "drvPath" | "attempt">, now: Date): { taskId: string; record: BuildRecord; leaseFor(sessionId: string): BuildLease } {
  const taskId = buildTaskId(drv.drvPath, drv.attempt);
  return {
    taskId,
    record: { kind: "build", drvPath: drv.drvPath, attempt: drv.attempt, startedAt: now.toISOString() },
    leaseFor: (sessionId) => ({ taskId, sessionId, leasedAt: now.toISOString() }),
  };
}

/** Room for the input paths in a build message: the rest of one frame stays for the envelope. */
const INPUTS_BUDGET_BYTES = MAX_FRAME_BYTES - 4 * 1024;

/**
 * The build task: with the outputs of its inputs Nimbus built and the caches holding them, so
 * the agent fetches them before building (as many as fit in one frame; Nix fetches any others
 * itself while building).
 */
export function buildTaskMessage(
  taskId: string,
  drv: Pick<DerivationItem, "drvPath" | "system" | "requiredFeatures">,
  inputs: readonly Pick<DerivationItem, "outputs" | "sources">[] = [],
): BuildTask {
  const paths: string[] = [];
  let bytes = 0;
  for (const path of [...new Set(inputs.flatMap((i) => Object.values(i.outputs)))].sort()) {
    bytes += Buffer.byteLength(path) + 3;
    if (bytes > INPUTS_BUDGET_BYTES) break;
    paths.push(path);
  }
  const caches = [...new Set(inputs.flatMap((i) => [...(i.sources ?? [])].filter((s) => s.startsWith("cache:")).map((s) => s.slice("cache:".length))))].sort();
  return {
    type: "build",
    taskId,
    drvPath: drv.drvPath,
    system: drv.system,
    requiredFeatures: drv.requiredFeatures,
    ...(paths.length > 0 ? { inputs: paths } : {}),
    ...(caches.length > 0 ? { inputCaches: caches.slice(0, 64) } : {}),
  };
}

/**
 * The derivation's inputs Nimbus built (those it waited for), read whole — but for those the
 * caller has read already (a settle has the input it just settled).
 */
export async function builtInputs(drv: DerivationItem, known: readonly DerivationItem[] = []): Promise<DerivationItem[]> {
  const paths = await derivationInputsOf(drv.drvPath, drv);
  const have = known.filter((input) => paths.includes(input.drvPath));
  const rest = paths.filter((path) => !have.some((input) => input.drvPath === path));
  return [...have, ...(await getDerivations(rest)).values()];
}

/** What a builder must be able to do for `drv`: Nix's rule, and reach every need (core obtaining.ts). */
export const needsOf = (drv: DerivationItem, inputs: readonly DerivationItem[]): BuildNeeds => ({
  system: drv.system,
  requiredFeatures: drv.requiredFeatures,
  needs: buildNeeds(drv.needs, inputs),
});
