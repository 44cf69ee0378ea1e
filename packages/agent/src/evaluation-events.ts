/**
 * What an evaluation tells the service, in order: the derivations that need building (inputs
 * before dependents), then the attributes and attribute errors (in attribute order); cut into
 * `evaluation-events` batches of at most 1000 events and one frame each.
 */
import { type EvaluationEvent, FeatureName, SystemName } from "@nimbus/protocol";
import { FRAME_BUDGET_BYTES, jsonBytes, splitBySize, truncateText } from "./message-size.ts";
import { type DerivationInfo, topologicalOrder } from "./nix-closure.ts";
import { comparePaths, EvaluationFailure, type WalkResult } from "./nix-walk.ts";

export const MAX_EVENTS_PER_BATCH = 1000;
/** One event never takes more than this, so it always fits in a batch with its envelope. */
const MAX_EVENT_BYTES = 24 * 1024;
const MAX_MESSAGE_CHARS = 8000;
const MAX_FEATURES = 64;

/**
 * What is built of each attribute (docs/effects.md, "Attribute types"): its derivation, except
 * for effects and dependencies-only attributes, whose inputs are built instead. A derivation only
 * may-fail attributes need, or a must-fail attribute's own, is `excused`: its failure alone does
 * not fail the job.
 */
export function buildRoots(walk: Pick<WalkResult, "attributes">, built: ReadonlySet<string>, infos: ReadonlyMap<string, DerivationInfo>) {
  const inputsToBuild = (drv: string) => (infos.get(drv)?.inputDrvs ?? []).filter((input) => built.has(input));
  const roots: string[] = [];
  const strictRoots: string[] = [];
  const mustFail = new Set<string>();
  for (const a of walk.attributes) {
    if (a.type === "effect" || a.type === "dependencies-only") {
      roots.push(...inputsToBuild(a.drvPath));
      strictRoots.push(...inputsToBuild(a.drvPath));
      continue;
    }
    if (!built.has(a.drvPath)) continue;
    roots.push(a.drvPath);
    if (a.type === "may-fail") continue;
    if (a.type === "must-fail") {
      mustFail.add(a.drvPath);
      strictRoots.push(...inputsToBuild(a.drvPath));
    } else strictRoots.push(a.drvPath);
  }
  const strict = closure(strictRoots, built, infos);
  const excused = (drv: string): "may-fail" | "must-fail" | undefined => (strict.has(drv) ? undefined : mustFail.has(drv) ? "must-fail" : "may-fail");
  return { roots, reachable: closure(roots, built, infos), excused, inputsToBuild };
}

/** Every derivation to build that `roots` need, themselves included. */
function closure(roots: readonly string[], built: ReadonlySet<string>, infos: ReadonlyMap<string, DerivationInfo>): Set<string> {
  const seen = new Set<string>();
  const stack = [...roots];
  while (stack.length > 0) {
    const drv = stack.pop()!;
    if (seen.has(drv) || !built.has(drv)) continue;
    seen.add(drv);
    for (const input of infos.get(drv)?.inputDrvs ?? []) stack.push(input);
  }
  return seen;
}

export interface EventPlan {
  /** The derivations to build that an attribute needs, inputs before dependents: the order of their events. */
  order: string[];
  /** The event (or the parts) of one of `order`, with its `sources` (evaluation-caches.ts). */
  derivation(drvPath: string, sources: string[][] | undefined): EvaluationEvent[];
  /** The `attribute` and `attribute-error` events, in attribute order: they follow every derivation event. */
  attributes: EvaluationEvent[];
}

/** What the events will be, so they can be sent piece by piece as what they promise becomes true. */
export function planEvents(walk: WalkResult, built: ReadonlySet<string>, infos: ReadonlyMap<string, DerivationInfo>): EventPlan {
  const { roots, reachable, excused, inputsToBuild } = buildRoots(walk, built, infos);
  // Only those to build that an attribute needs: `infos` may also describe inputs that were looked at.
  const toBuild = new Map([...infos].filter(([drv]) => reachable.has(drv)));
  const derivation = (drvPath: string, sources: string[][] | undefined): EvaluationEvent[] => {
    const info = infos.get(drvPath)!;
    checkRepresentable(info);
    const why = excused(drvPath);
    const parts = derivationEvents(info, info.inputDrvs.filter((input) => built.has(input)), sources);
    return why ? parts.map((e) => ({ ...e, excused: why })) : parts;
  };

  const attributes: EvaluationEvent[] = walk.attributes.map((a) => ({
    kind: "attribute",
    path: a.path,
    drvPath: a.drvPath,
    attributeType: a.type,
    needsBuild: a.type === "effect" || a.type === "dependencies-only" ? inputsToBuild(a.drvPath).length > 0 : built.has(a.drvPath),
    ...(a.type === "effect" && infos.get(a.drvPath) ? { system: infos.get(a.drvPath)!.system } : {}),
  }));
  const errors: EvaluationEvent[] = walk.errors.map((e) => ({
    kind: "attribute-error",
    path: e.path,
    message: truncateText(e.message, MAX_MESSAGE_CHARS, MAX_EVENT_BYTES - 2048),
  }));
  const pathOf = (e: EvaluationEvent) => (e.kind === "derivation" ? [] : e.path);
  return { order: topologicalOrder(roots, toBuild), derivation, attributes: [...attributes, ...errors].sort((a, b) => comparePaths(pathOf(a), pathOf(b))) };
}

/**
 * Usually one event. A derivation with so many inputs to build that its event would not fit
 * in a frame becomes several events for the same `drvPath`, each with a share of `inputDrvs`
 * and its `part`: the service takes the union and builds nothing before all parts arrived.
 */
function derivationEvents(info: DerivationInfo, inputDrvs: string[], sources: string[][] | undefined): EvaluationEvent[] {
  const base = {
    kind: "derivation" as const,
    drvPath: info.drvPath,
    system: info.system,
    requiredFeatures: info.requiredFeatures,
    outputs: info.outputs,
    ...(sources === undefined ? {} : { sources }),
  };
  const whole: EvaluationEvent = { ...base, inputDrvs };
  if (jsonBytes(whole) <= MAX_EVENT_BYTES) return [whole];
  const room = MAX_EVENT_BYTES - jsonBytes({ ...base, inputDrvs: [], part: { index: 999, count: 1000 } });
  if (room < 1024) throw new EvaluationFailure(`derivation ${info.drvPath} has too many outputs to report`);
  const shares = splitBySize(inputDrvs, inputDrvs.map(jsonBytes), 0, 4096, room);
  return shares.map((share, index) => ({
    ...base,
    inputDrvs: share,
    ...(shares.length > 1 ? { part: { index, count: shares.length } } : {}),
  }));
}

function checkRepresentable(info: DerivationInfo): void {
  if (!SystemName.safeParse(info.system).success) {
    throw new EvaluationFailure(`derivation ${info.drvPath} has system ${JSON.stringify(info.system)}, which is not a Nix system Nimbus can dispatch`);
  }
  const bad = info.requiredFeatures.find((f) => !FeatureName.safeParse(f).success);
  if (bad !== undefined || info.requiredFeatures.length > MAX_FEATURES) {
    throw new EvaluationFailure(
      `derivation ${info.drvPath} requires the system features ${JSON.stringify(info.requiredFeatures)}; Nimbus accepts at most ${MAX_FEATURES} of letters, digits and . _ + -`,
    );
  }
}

/** Consecutive batches, each at most 1000 events and one frame once wrapped in its message. */
export function batchEvents(taskId: string, events: readonly EvaluationEvent[]): EvaluationEvent[][] {
  const envelope = jsonBytes({ type: "evaluation-events", taskId, seq: 1_000_000, events: [] });
  return splitBySize(events, events.map(jsonBytes), envelope, MAX_EVENTS_PER_BATCH, FRAME_BUDGET_BYTES);
}
