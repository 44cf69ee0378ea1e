/**
 * The benchmark's synthetic evaluation: a layered graph of derivations over several systems
 * and feature sets, generated from a seed so that runs are comparable, and cut into
 * `evaluation-events` batches the way an agent would send them.
 */
import { seededRandom } from "@nimbus/local";
import { MAX_FRAME_BYTES, type DerivationEvent, type EvaluationEvent } from "@nimbus/protocol";
import { storeHashOf } from "../test/support/generated-paths.ts";

export const SYSTEMS = ["x86_64-linux", "aarch64-linux", "x86_64-darwin"] as const;
export const FEATURE_SETS: readonly (readonly string[])[] = [[], ["big-parallel"]];

export interface WorkloadOptions {
  derivations: number;
  layers: number;
  /** Most inputs a derivation has (from earlier layers of its own system); 0..max, uniform. */
  maxInputs: number;
  /** Share of derivations that require `big-parallel`. */
  bigParallelShare: number;
  seed: number;
}

export const DEFAULT_WORKLOAD: WorkloadOptions = {
  derivations: 2000,
  layers: 20,
  maxInputs: 3,
  bigParallelShare: 0.25,
  seed: 20261121,
};

export interface Workload {
  options: WorkloadOptions;
  /** Derivation events in topological order (inputs first). */
  derivations: DerivationEvent[];
  /** Every event an evaluation reports: the derivations, then one attribute per top-layer derivation. */
  events: EvaluationEvent[];
  /** The (system, features) combinations that occur, e.g. `x86_64-linux` or `x86_64-linux+big-parallel`. */
  queues: string[];
  edges: number;
}

export const queueLabel = (system: string, features: readonly string[]) => [system, ...features].join("+");

export function generateWorkload(options: WorkloadOptions = DEFAULT_WORKLOAD): Workload {
  const random = seededRandom(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const perLayer = Math.ceil(options.derivations / options.layers);
  // Per system, the drv paths of each layer so far: inputs come from earlier layers of the same system.
  const earlier = new Map<string, string[]>(SYSTEMS.map((s) => [s, []]));
  const derivations: DerivationEvent[] = [];
  const topLayer: string[] = [];
  const queues = new Set<string>();
  let edges = 0;

  for (let layer = 0; layer < options.layers; layer++) {
    const layerDrvs: Array<{ system: string; drvPath: string }> = [];
    const count = Math.min(perLayer, options.derivations - layer * perLayer);
    for (let i = 0; i < count; i++) {
      const index = layer * perLayer + i;
      const system = pick(SYSTEMS);
      const requiredFeatures = [...(random() < options.bigParallelShare ? FEATURE_SETS[1]! : FEATURE_SETS[0]!)];
      const pool = earlier.get(system)!;
      const wanted = layer === 0 ? 0 : Math.floor(random() * (options.maxInputs + 1));
      const inputs = new Set<string>();
      for (let tries = 0; inputs.size < Math.min(wanted, pool.length) && tries < 20; tries++) {
        // Lean towards recent layers, so the graph is deep rather than a flat fan-in from layer 0.
        const skew = 1 - Math.pow(random(), 2);
        inputs.add(pool[Math.min(pool.length - 1, Math.floor(skew * pool.length))]!);
      }
      const name = `bench-${String(index).padStart(5, "0")}`;
      const hash = storeHashOf(`${options.seed}/${name}`);
      const drvPath = `/nix/store/${hash}-${name}.drv`;
      derivations.push({
        kind: "derivation",
        drvPath,
        system,
        requiredFeatures,
        inputDrvs: [...inputs],
        outputs: { out: `/nix/store/${storeHashOf(`${options.seed}/${name}/out`)}-${name}` },
      });
      edges += inputs.size;
      queues.add(queueLabel(system, requiredFeatures));
      layerDrvs.push({ system, drvPath });
      if (layer === options.layers - 1) topLayer.push(drvPath);
    }
    // Added after the layer, so a derivation never depends on one of its own layer.
    for (const { system, drvPath } of layerDrvs) earlier.get(system)!.push(drvPath);
  }

  const attributes: EvaluationEvent[] = topLayer.map((drvPath, i) => ({
    kind: "attribute",
    path: ["packages", `top-${i}`],
    drvPath,
    attributeType: "regular",
    needsBuild: true,
  }));
  return { options, derivations, events: [...derivations, ...attributes], queues: [...queues].sort(), edges };
}

/** The events cut into batches of at most `maxEvents` events and `maxBytes` per message (as sent). */
export function batchEvents(
  taskId: string,
  events: readonly EvaluationEvent[],
  limits: { maxEvents: number; maxBytes: number } = { maxEvents: 1000, maxBytes: MAX_FRAME_BYTES },
): EvaluationEvent[][] {
  // The envelope around the events, with room for a large seq number.
  const envelope = Buffer.byteLength(JSON.stringify({ type: "evaluation-events", taskId, seq: 1_000_000, events: [] }));
  const batches: EvaluationEvent[][] = [];
  let current: EvaluationEvent[] = [];
  let size = envelope;
  for (const event of events) {
    const bytes = Buffer.byteLength(JSON.stringify(event)) + 1; // and its comma
    if (current.length > 0 && (current.length >= limits.maxEvents || size + bytes > limits.maxBytes)) {
      batches.push(current);
      current = [];
      size = envelope;
    }
    current.push(event);
    size += bytes;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/**
 * Independent chains, each of one (system, features) queue: at most `chainsPerQueue`
 * derivations of a queue are ready at once, so agents with more free slots than that per
 * queue always have spare capacity — the "idle" dispatch scenario (a trickle of ready work).
 */
export function generateChains(options: { chainsPerQueue: number; length: number; seed: number }): Workload {
  const derivations: DerivationEvent[] = [];
  const attributes: EvaluationEvent[] = [];
  const queues = new Set<string>();
  let edges = 0;
  let chain = 0;
  for (const system of SYSTEMS) {
    for (const features of FEATURE_SETS) {
      queues.add(queueLabel(system, features));
      for (let c = 0; c < options.chainsPerQueue; c++, chain++) {
        let previous: string | undefined;
        for (let link = 0; link < options.length; link++) {
          const name = `chain-${String(chain).padStart(3, "0")}-${String(link).padStart(4, "0")}`;
          const drvPath = `/nix/store/${storeHashOf(`${options.seed}/${name}`)}-${name}.drv`;
          derivations.push({
            kind: "derivation",
            drvPath,
            system,
            requiredFeatures: [...features],
            inputDrvs: previous ? [previous] : [],
            outputs: { out: `/nix/store/${storeHashOf(`${options.seed}/${name}/out`)}-${name}` },
          });
          if (previous) edges++;
          previous = drvPath;
        }
        attributes.push({ kind: "attribute", path: ["chains", `chain-${chain}`], drvPath: previous!, attributeType: "regular", needsBuild: true });
      }
    }
  }
  return {
    options: { derivations: derivations.length, layers: options.length, maxInputs: 1, bigParallelShare: 0.5, seed: options.seed },
    derivations,
    events: [...derivations, ...attributes],
    queues: [...queues].sort(),
    edges,
  };
}
