/**
 * Which scenarios `npm run bench` runs and with what sizes: names from the command line (or
 * NIMBUS_BENCH_SCENARIOS), sizes from NIMBUS_BENCH_* variables. Pure: it reads only what it is
 * given, and bad input is a BenchOptionsError naming the variable and what it accepts.
 */

export const SCENARIOS = ["saturated", "idle", "ingest", "agents1000", "realnix", "nixpkgs"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** What `npm run bench` runs with no names given (about five minutes on two cores): all but `nixpkgs`, a whole big job. */
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = SCENARIOS.filter((s) => s !== "nixpkgs");

export class BenchOptionsError extends Error {
  override name = "BenchOptionsError";
}

export interface BenchOptions {
  scenarios: ScenarioName[];
  seed: number;
  timeoutMs: number;
  saturated: { derivations: number; layers: number; baselineRepetitions: number };
  idle: { chainsPerQueue: number; length: number; buildMs: number };
  ingest: { derivations: number };
  agents: { sizes: number[] };
  realNix: { n: number };
  nixpkgs: { derivations: number };
}

/** Scenario names from argv (words, or commas) or else the variable; "all" is every scenario. */
export function parseScenarios(args: readonly string[], variable: string | undefined): ScenarioName[] {
  const words = (args.length > 0 ? args.join(",") : variable ?? "").split(/[\s,]+/).filter(Boolean);
  if (words.length === 0) return [...DEFAULT_SCENARIOS];
  const chosen = new Set<ScenarioName>();
  for (const word of words) {
    if (word === "all") SCENARIOS.forEach((s) => chosen.add(s));
    else if ((SCENARIOS as readonly string[]).includes(word)) chosen.add(word as ScenarioName);
    else throw new BenchOptionsError(`unknown bench scenario ${JSON.stringify(word)}: choose from ${SCENARIOS.join(", ")} (or all)`);
  }
  // Always in the documented order, whatever order they were named in.
  return SCENARIOS.filter((s) => chosen.has(s));
}

type Env = Readonly<Record<string, string | undefined>>;

/** A whole number from the environment, at least `min`; `fallback` when unset or blank. */
export function integer(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new BenchOptionsError(`${name} must be a whole number of at least ${min}, not ${JSON.stringify(raw)}`);
  return value;
}

function sizes(env: Env, name: string, fallback: number[]): number[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const values = raw.split(/[\s,]+/).filter(Boolean).map(Number);
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new BenchOptionsError(`${name} must be agent counts separated by commas (e.g. 10,1000), not ${JSON.stringify(raw)}`);
  }
  return values;
}

export function parseBenchOptions(args: readonly string[], env: Env): BenchOptions {
  return {
    scenarios: parseScenarios(args, env.NIMBUS_BENCH_SCENARIOS),
    seed: integer(env, "NIMBUS_BENCH_SEED", 20261121, 0),
    timeoutMs: integer(env, "NIMBUS_BENCH_TIMEOUT_S", 600, 1) * 1000,
    saturated: {
      derivations: integer(env, "NIMBUS_BENCH_DERIVATIONS", 2000, 1),
      layers: integer(env, "NIMBUS_BENCH_LAYERS", 20, 1),
      baselineRepetitions: integer(env, "NIMBUS_BENCH_BASELINE_REPS", 200, 1),
    },
    // One chain per queue of 1-second builds: the local stack's main thread stays mostly idle
    // (2 chains of 100 ms builds kept it over 90 % busy: a saturated coordinator, not spare capacity).
    idle: {
      chainsPerQueue: integer(env, "NIMBUS_BENCH_IDLE_CHAINS", 1, 1),
      length: integer(env, "NIMBUS_BENCH_IDLE_LENGTH", 20, 1),
      buildMs: integer(env, "NIMBUS_BENCH_IDLE_BUILD_MS", 1000, 0),
    },
    ingest: { derivations: integer(env, "NIMBUS_BENCH_INGEST_DERIVATIONS", 1000, 50) },
    agents: { sizes: sizes(env, "NIMBUS_BENCH_AGENT_COUNTS", [10, 1000]) },
    realNix: { n: integer(env, "NIMBUS_BENCH_REALNIX_N", 100, 1) },
    // At least the graph's bootstrap and hub derivations and a spine of its depth (bench/nixpkgs-graph.ts).
    nixpkgs: { derivations: integer(env, "NIMBUS_BENCH_NIXPKGS_DERIVATIONS", 10_000, 40) },
  };
}
