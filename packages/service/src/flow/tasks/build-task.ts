/**
 * What a build task is, apart from how it is dispatched and reported: its id, what its session
 * records, the message the agent gets, and what an agent must reach to take it. Used by the
 * build task kind (flow/tasks/build.ts) and by a hand-over (flow/hand-over.ts).
 */
import { buildNeeds, builtInputOf, inputsAtHand, type BuildNeeds, type BuiltInput } from "@nimbus/core";
import type { BuildTask } from "@nimbus/protocol";
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

/**
 * The build task: with the outputs of its inputs Nimbus built and the caches holding them
 * (core `taskInputs`: as many as fit in one frame; Nix fetches any others itself while building).
 */
export function buildTaskMessage(
  taskId: string,
  drv: Pick<DerivationItem, "drvPath" | "system" | "requiredFeatures">,
  carried: { inputs?: string[]; inputCaches?: string[] } = {},
): BuildTask {
  return {
    type: "build",
    taskId,
    drvPath: drv.drvPath,
    system: drv.system,
    requiredFeatures: drv.requiredFeatures,
    ...(carried.inputs?.length ? { inputs: carried.inputs } : {}),
    ...(carried.inputCaches?.length ? { inputCaches: carried.inputCaches } : {}),
  };
}

/**
 * The derivation's inputs Nimbus built (those it waited for), each with its outputs: from its
 * item and those the caller has read (a settle has the input it just settled) when every one
 * is there (core `inputsAtHand`), else read.
 */
export async function builtInputs(drv: DerivationItem, known: readonly DerivationItem[] = []): Promise<BuiltInput[]> {
  const atHand = inputsAtHand(drv, known.map(builtInputOf));
  if (atHand) return atHand;
  const paths = await derivationInputsOf(drv.drvPath, drv);
  const have = known.filter((input) => paths.includes(input.drvPath));
  const rest = paths.filter((path) => !have.some((input) => input.drvPath === path));
  return [...have, ...(await getDerivations(rest)).values()].map(builtInputOf);
}

/** What a builder must be able to do for `drv` (its item, or its edge row's placement): Nix's rule, and reach every need (core obtaining.ts). */
export const needsOf = (drv: Pick<DerivationItem, "system" | "requiredFeatures" | "needs">, inputs: readonly BuiltInput[]): BuildNeeds => ({
  system: drv.system,
  requiredFeatures: drv.requiredFeatures,
  needs: buildNeeds(drv.needs, inputs),
});
