/**
 * The chaos run's workload: a seeded, layered derivation graph over several systems and
 * feature sets, split into jobs that share part of it, with a few builder failures — and what
 * every derivation and job must end as, worked out from the graph alone.
 */
import { createHash } from "node:crypto";
import { seededRandom } from "@nimbus/local";
import type { DerivationEvent, DerivationStatus, EvaluationEvent, JobStatus } from "@nimbus/protocol";
import { storeHashOf } from "./generated-paths.ts";

export interface GraphShape {
  derivations: number;
  layers: number;
  jobs: number;
  /** Share of derivations whose builder fails (a cached failure: their dependents fail too). */
  failShare: number;
  seed: number;
}

/** What each derivation needs of an agent: most are plain x86_64 or aarch64, some need a feature. */
export const PLATFORMS: readonly { system: string; requiredFeatures: string[]; share: number }[] = [
  { system: "x86_64-linux", requiredFeatures: [], share: 0.55 },
  { system: "aarch64-linux", requiredFeatures: [], share: 0.3 },
  { system: "x86_64-linux", requiredFeatures: ["kvm"], share: 0.08 },
  { system: "aarch64-linux", requiredFeatures: ["big-parallel"], share: 0.07 },
];

export interface ChaosJob {
  repository: string;
  commit: string;
  /** The job's evaluation: its closure's derivations (inputs first), then its attributes. */
  events: EvaluationEvent[];
  derivations: string[];
  expected: { status: JobStatus; counts: Partial<Record<DerivationStatus, number>> };
}

export interface ChaosGraph {
  derivations: DerivationEvent[];
  /** Derivations whose builder fails. */
  failing: Set<string>;
  /** How each derivation must end. */
  expected: Map<string, DerivationStatus>;
  jobs: ChaosJob[];
}

export function chaosGraph(shape: GraphShape): ChaosGraph {
  const random = seededRandom(shape.seed);
  const perLayer = Math.ceil(shape.derivations / shape.layers);
  const derivations: DerivationEvent[] = [];
  const family: number[] = [];
  const hasDependents = new Set<string>();
  const failing = new Set<string>();
  for (let i = 0; i < shape.derivations; i++) {
    const layer = Math.floor(i / perLayer);
    let roll = random();
    const platform = PLATFORMS.find((p) => (roll -= p.share) < 0) ?? PLATFORMS[0]!;
    const name = `chaos-${String(i).padStart(5, "0")}`;
    const drvPath = `/nix/store/${storeHashOf(`${shape.seed}/${name}`)}-${name}.drv`;
    // Each derivation belongs to one job's family; some inputs come from other families, so jobs share work.
    const own = i % shape.jobs;
    const inputs = new Set<string>();
    if (layer > 0) {
      const wanted = Math.floor(random() * 4);
      for (let tries = 0; inputs.size < wanted && tries < 12; tries++) {
        // Lean towards the layer just below, so the graph is deep.
        const fromLayer = Math.max(0, layer - 1 - Math.floor(random() * random() * layer));
        const candidate = fromLayer * perLayer + Math.floor(random() * perLayer);
        if (candidate >= i || candidate >= derivations.length) continue;
        if (family[candidate] !== own && random() < 0.8) continue;
        inputs.add(derivations[candidate]!.drvPath);
      }
    }
    for (const input of inputs) hasDependents.add(input);
    if (layer > 0 && random() < shape.failShare) failing.add(drvPath);
    family.push(own);
    derivations.push({
      kind: "derivation",
      drvPath,
      system: platform.system,
      requiredFeatures: [...platform.requiredFeatures],
      inputDrvs: [...inputs],
      outputs: { out: `/nix/store/${storeHashOf(`${shape.seed}/${name}/out`)}-${name}` },
    });
  }

  // Inputs come before dependents, so one pass decides every status.
  const expected = new Map<string, DerivationStatus>();
  for (const drv of derivations) {
    const inputFailed = drv.inputDrvs.some((input) => expected.get(input) !== "succeeded");
    expected.set(drv.drvPath, inputFailed ? "dependency-failed" : failing.has(drv.drvPath) ? "failed" : "succeeded");
  }

  const byPath = new Map(derivations.map((d, i) => [d.drvPath, i]));
  const jobs: ChaosJob[] = [];
  for (let j = 0; j < shape.jobs; j++) {
    // A job's attributes: the top derivations of its family, and a few of the others'.
    const tops = derivations.filter((d, i) => !hasDependents.has(d.drvPath) && (family[i] === j || random() < 0.03));
    const closure = new Set<number>();
    const visit = (index: number) => {
      if (closure.has(index)) return;
      closure.add(index);
      for (const input of derivations[index]!.inputDrvs) visit(byPath.get(input)!);
    };
    for (const top of tops) visit(byPath.get(top.drvPath)!);
    const members = [...closure].sort((a, b) => a - b).map((i) => derivations[i]!);
    const counts: Partial<Record<DerivationStatus, number>> = {};
    for (const drv of members) {
      const status = expected.get(drv.drvPath)!;
      counts[status] = (counts[status] ?? 0) + 1;
    }
    jobs.push({
      repository: `chaos/job-${j}`,
      commit: createHash("sha1").update(`${shape.seed}/job-${j}`).digest("hex"),
      events: [
        ...members,
        ...tops.map((top, k): EvaluationEvent => ({ kind: "attribute", path: [`top-${k}`], drvPath: top.drvPath, attributeType: "regular", needsBuild: true })),
      ],
      derivations: members.map((d) => d.drvPath),
      expected: { status: counts.failed || counts["dependency-failed"] ? "failed" : "succeeded", counts },
    });
  }
  return { derivations, failing, expected, jobs };
}
