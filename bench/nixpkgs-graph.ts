/**
 * A generated evaluation shaped like nixpkgs, for the ingest scenario: wide, `depth` layers
 * deep, five systems of unequal size, a few hub derivations per system (stdenv, bash, glibc…)
 * that most of their system depends on — at 100,000 derivations the three hubs of
 * x86_64-linux each have 10,000+ dependents — and some required features (big-parallel, kvm,
 * nixos-test). Seeded, so runs are comparable; events in topological order (inputs first).
 */
import type { DerivationEvent, EvaluationEvent } from "@nimbus/protocol";
import { seededRandom } from "@nimbus/local";
import { storeHashOf } from "../test/support/generated-paths.ts";

export interface NixpkgsShape {
  derivations: number;
  /** Derivations on the longest input chain (layer 0 bootstrap, layer 1 hubs, then the rest). */
  depth: number;
  /** Per hub of a system, the share of that system's other derivations that depend on it. */
  hubShares: readonly number[];
  /** Most extra inputs a derivation has besides its spine input and hubs; 0..max, uniform. */
  maxExtraInputs: number;
  /** Share of (non-bootstrap, non-hub) derivations that are an attribute of their own. */
  attributeShare: number;
  seed: number;
}

export const DEFAULT_NIXPKGS_SHAPE: NixpkgsShape = {
  derivations: 100_000,
  depth: 20,
  hubShares: [0.9, 0.6, 0.35],
  maxExtraInputs: 4,
  attributeShare: 0.5,
  seed: 20261129,
};

/** The five systems, with their share of the derivations (x86_64-linux first: it carries the depth). */
export const NIXPKGS_SYSTEMS: ReadonlyArray<{ system: string; share: number; linux: boolean }> = [
  { system: "x86_64-linux", share: 0.4, linux: true },
  { system: "aarch64-linux", share: 0.25, linux: true },
  { system: "aarch64-darwin", share: 0.15, linux: false },
  { system: "x86_64-darwin", share: 0.15, linux: false },
  { system: "i686-linux", share: 0.05, linux: true },
];

/** Required features and how often (per derivation, Linux-only ones on Linux systems). */
export const NIXPKGS_FEATURES: ReadonlyArray<{ features: readonly string[]; share: number; linuxOnly: boolean }> = [
  { features: ["big-parallel"], share: 0.03, linuxOnly: false },
  { features: ["kvm", "nixos-test"], share: 0.01, linuxOnly: true },
];

export interface NixpkgsGraph {
  shape: NixpkgsShape;
  derivations: DerivationEvent[];
  /** The derivations, then the attributes. */
  events: EvaluationEvent[];
  /** drvPath of each hub → how many derivations list it as an input. */
  hubDependents: Map<string, number>;
  edges: number;
}

class ShapeError extends Error {
  override name = "ShapeError";
}

export function generateNixpkgsGraph(shape: NixpkgsShape = DEFAULT_NIXPKGS_SHAPE): NixpkgsGraph {
  const bootstrapAndHubs = NIXPKGS_SYSTEMS.length * (1 + shape.hubShares.length);
  if (!Number.isInteger(shape.derivations) || shape.derivations < bootstrapAndHubs + shape.depth - 2) {
    throw new ShapeError(`a nixpkgs-like graph of depth ${shape.depth} needs at least ${bootstrapAndHubs + shape.depth - 2} derivations, not ${shape.derivations}`);
  }
  if (!Number.isInteger(shape.depth) || shape.depth < 3) throw new ShapeError(`depth must be an integer of at least 3, not ${shape.depth}`);
  const random = seededRandom(shape.seed);
  const derivations: DerivationEvent[] = [];
  const attributes: EvaluationEvent[] = [];
  const hubDependents = new Map<string, number>();
  let edges = 0;
  // Per system, the drv paths of each layer so far.
  const layers = new Map<string, string[][]>(NIXPKGS_SYSTEMS.map((s) => [s.system, []]));
  const hubs = new Map<string, string[]>();

  const add = (system: string, layer: number, name: string, inputs: string[], features: readonly string[]) => {
    const drvPath = `/nix/store/${storeHashOf(`${shape.seed}/${name}`)}-${name}.drv`;
    derivations.push({
      kind: "derivation",
      drvPath,
      system,
      requiredFeatures: [...features],
      inputDrvs: inputs,
      outputs: { out: `/nix/store/${storeHashOf(`${shape.seed}/${name}/out`)}-${name}` },
    });
    edges += inputs.length;
    const perLayer = layers.get(system)!;
    (perLayer[layer] ??= []).push(drvPath);
    return drvPath;
  };

  // Layer 0: one bootstrap per system; layer 1: its hubs, on the bootstrap.
  for (const { system } of NIXPKGS_SYSTEMS) {
    const bootstrap = add(system, 0, `bootstrap-${system}`, [], []);
    hubs.set(
      system,
      shape.hubShares.map((_, h) => {
        const hub = add(system, 1, `hub${h}-${system}`, [bootstrap], []);
        hubDependents.set(hub, 0);
        return hub;
      }),
    );
  }

  // Layers 2..depth-1, equally wide; the first derivation of each is x86_64-linux, so the spine reaches `depth`.
  const rest = shape.derivations - derivations.length;
  const upperLayers = shape.depth - 2;
  const cumulative = NIXPKGS_SYSTEMS.map((_, i) => NIXPKGS_SYSTEMS.slice(0, i + 1).reduce((sum, s) => sum + s.share, 0));
  let previousLayer = 1;
  for (let i = 0; i < rest; i++) {
    const layer = 2 + Math.floor((i * upperLayers) / rest);
    const firstOfLayer = layer !== previousLayer;
    previousLayer = layer;
    const roll = random();
    const spec = firstOfLayer ? NIXPKGS_SYSTEMS[0]! : NIXPKGS_SYSTEMS[cumulative.findIndex((c) => roll < c)] ?? NIXPKGS_SYSTEMS.at(-1)!;
    const perLayer = layers.get(spec.system)!;
    const inputs = new Set<string>();
    // The spine: one input from the layer just below (or the nearest one this system has).
    for (let below = layer - 1; below >= 1; below--) {
      const pool = perLayer[below];
      if (pool?.length) {
        inputs.add(pool[Math.floor(random() * pool.length)]!);
        break;
      }
    }
    const systemHubs = hubs.get(spec.system)!;
    shape.hubShares.forEach((share, h) => {
      if (random() < share) inputs.add(systemHubs[h]!);
    });
    const extra = Math.floor(random() * (shape.maxExtraInputs + 1));
    for (let e = 0; e < extra; e++) {
      const from = 2 + Math.floor(random() * Math.max(0, layer - 2));
      const pool = from < layer ? perLayer[from] : undefined;
      if (pool?.length) inputs.add(pool[Math.floor(random() * pool.length)]!);
    }
    for (const input of inputs) if (hubDependents.has(input)) hubDependents.set(input, hubDependents.get(input)! + 1);
    const featureRoll = random();
    let features: readonly string[] = [];
    let acc = 0;
    for (const f of NIXPKGS_FEATURES) {
      acc += f.share;
      if (featureRoll < acc) {
        if (!f.linuxOnly || spec.linux) features = f.features;
        break;
      }
    }
    const name = `pkg-${String(i).padStart(6, "0")}`;
    const drvPath = add(spec.system, layer, name, [...inputs], features);
    if (random() < shape.attributeShare) {
      attributes.push({ kind: "attribute", path: ["legacyPackages", spec.system, name], drvPath, attributeType: "regular", needsBuild: true });
    }
  }
  return { shape, derivations, events: [...derivations, ...attributes], hubDependents, edges };
}

/** Derivations on the longest input chain (1 for a derivation without inputs). */
export function longestChain(derivations: readonly DerivationEvent[]): number {
  const depth = new Map<string, number>();
  let longest = 0;
  for (const d of derivations) {
    const own = 1 + Math.max(0, ...d.inputDrvs.map((i) => depth.get(i) ?? 0));
    depth.set(d.drvPath, own);
    longest = Math.max(longest, own);
  }
  return longest;
}
