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

/** `sources`: for each derivation to build, where a builder gets what it needs besides the inputs it lists (evaluation-caches.ts). */
export function evaluationEvents(
  walk: WalkResult,
  built: ReadonlySet<string>,
  infos: ReadonlyMap<string, DerivationInfo>,
  sources?: ReadonlyMap<string, string[][]>,
): EvaluationEvent[] {
  const events: EvaluationEvent[] = [];
  const roots = walk.attributes.map((a) => a.drvPath).filter((drv) => built.has(drv));
  // Only those to build: `infos` may also describe inputs that were looked at.
  const toBuild = new Map([...infos].filter(([drv]) => built.has(drv)));
  for (const drvPath of topologicalOrder(roots, toBuild)) {
    const info = infos.get(drvPath)!;
    checkRepresentable(info);
    events.push(...derivationEvents(info, info.inputDrvs.filter((input) => built.has(input)), sources?.get(drvPath)));
  }

  const attributes: EvaluationEvent[] = walk.attributes.map((a) => ({
    kind: "attribute",
    path: a.path,
    drvPath: a.drvPath,
    attributeType: "regular",
    needsBuild: built.has(a.drvPath),
  }));
  const errors: EvaluationEvent[] = walk.errors.map((e) => ({
    kind: "attribute-error",
    path: e.path,
    message: truncateText(e.message, MAX_MESSAGE_CHARS, MAX_EVENT_BYTES - 2048),
  }));
  const pathOf = (e: EvaluationEvent) => (e.kind === "derivation" ? [] : e.path);
  events.push(...[...attributes, ...errors].sort((a, b) => comparePaths(pathOf(a), pathOf(b))));
  return events;
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
