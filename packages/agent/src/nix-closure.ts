/**
 * Which derivations of an evaluation need building, and what the service must know about
 * each: asked of Nix in bulk (a few invocations for 100,000 derivations, never one each).
 */
import { chunkArguments, mapConcurrently, runProcess } from "./process.ts";

export interface NixCall {
  optionArgs: string[];
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  cwd?: string;
  /** Makes Nix's stderr into a message. */
  message: (stderr: string) => string;
}

/** Nix could not answer a question about the store (the evaluation fails with this). */
export class NixQueryError extends Error {
  override readonly name = "NixQueryError";
}

export interface DerivationInfo {
  drvPath: string;
  system: string;
  /** Sorted, without duplicates. */
  requiredFeatures: string[];
  /** Every input derivation (the caller keeps those that need building). */
  inputDrvs: string[];
  /** The outputs of each input derivation this one uses, by name. */
  inputOutputs: Record<string, string[]>;
  /** Output name → store path (outputs whose path is not known yet are left out). */
  outputs: Record<string, string>;
}

const HEADER_BUILT = /will be built:$/;

/**
 * The derivations `nix-store --realise` would build for `drvs` (and their closures): neither
 * valid locally nor substitutable. Nix 2.8 prints, on stderr, `this derivation will be built:`
 * or `these N derivations will be built:` followed by the paths indented by two spaces, and
 * likewise `these paths will be fetched (…):` for substitutable ones.
 */
export async function derivationsToBuild(drvs: readonly string[], call: NixCall): Promise<Set<string>> {
  const built = new Set<string>();
  // Few, large chunks (about 12,000 paths): each invocation walks its own closure, shared parts again.
  for (const chunk of chunkArguments([...new Set(drvs)], 1024 * 1024, 50_000)) {
    // Parsed as it streams: the list can be megabytes, far more than the stderr kept for errors.
    const parser = new WillBeBuiltParser((drv) => built.add(drv));
    const result = await runProcess("nix-store", ["--realise", "--dry-run", ...call.optionArgs, ...chunk], {
      cwd: call.cwd,
      env: call.env,
      signal: call.signal,
      discardStdout: true,
      onLine: (line, stream) => stream === "stderr" && parser.line(line),
    });
    if (call.signal.aborted) throw call.signal.reason;
    if (result.code !== 0) throw new NixQueryError(`\`nix-store --realise --dry-run\` failed: ${call.message(result.stderr)}`);
  }
  return built;
}

/** Picks the paths under "… will be built:" headers out of dry-run output, line by line. */
export class WillBeBuiltParser {
  private inBuilt = false;

  constructor(private readonly found: (drvPath: string) => void) {}

  line(line: string): void {
    if (line.startsWith("  ")) {
      if (this.inBuilt) this.found(line.trim());
    } else if (line !== "") {
      this.inBuilt = HEADER_BUILT.test(line);
    }
  }
}

export function parseWillBeBuilt(stderr: string): string[] {
  const paths: string[] = [];
  const parser = new WillBeBuiltParser((drv) => paths.push(drv));
  for (const line of stderr.split("\n")) parser.line(line);
  return paths;
}

/** Shape of one entry of `nix show-derivation` (only what is used). */
interface ShownDerivation {
  outputs?: Record<string, { path?: string }>;
  inputDrvs?: Record<string, unknown>;
  system?: string;
  env?: Record<string, string>;
}

/**
 * `nix show-derivation` (without `-r`: the caller already knows which derivations matter) in
 * chunks, a few at a time; only the fields the service needs are kept.
 */
export async function showDerivations(drvs: readonly string[], call: NixCall): Promise<Map<string, DerivationInfo>> {
  const infos = new Map<string, DerivationInfo>();
  const chunks = chunkArguments([...new Set(drvs)], 128 * 1024, 1000);
  await mapConcurrently(chunks, 4, async (chunk) => {
    const result = await runProcess(
      "nix",
      ["--extra-experimental-features", "nix-command", ...call.optionArgs, "show-derivation", ...chunk],
      { cwd: call.cwd, env: call.env, signal: call.signal },
    );
    if (call.signal.aborted) throw call.signal.reason;
    if (result.code !== 0) throw new NixQueryError(`\`nix show-derivation\` failed: ${call.message(result.stderr)}`);
    const shown = JSON.parse(result.stdout) as Record<string, ShownDerivation>;
    for (const [drvPath, drv] of Object.entries(shown)) infos.set(drvPath, derivationInfo(drvPath, drv));
  });
  return infos;
}

function derivationInfo(drvPath: string, drv: ShownDerivation): DerivationInfo {
  const outputs: Record<string, string> = {};
  for (const [name, output] of Object.entries(drv.outputs ?? {})) {
    if (typeof output.path === "string") outputs[name] = output.path;
  }
  return {
    drvPath,
    system: drv.system ?? "",
    requiredFeatures: requiredFeatures(drv.env ?? {}),
    inputDrvs: Object.keys(drv.inputDrvs ?? {}).sort(),
    inputOutputs: Object.fromEntries(
      Object.entries(drv.inputDrvs ?? {}).map(([input, names]) => [input, Array.isArray(names) ? names.filter((n): n is string => typeof n === "string") : []]),
    ),
    outputs,
  };
}

/** `requiredSystemFeatures`: a space-separated string, or a list under `__structuredAttrs`. */
function requiredFeatures(env: Record<string, string>): string[] {
  let features: unknown = env["requiredSystemFeatures"]?.split(/\s+/);
  if (env["__json"] !== undefined) {
    try {
      features = (JSON.parse(env["__json"]) as { requiredSystemFeatures?: unknown }).requiredSystemFeatures;
    } catch {
      features = [];
    }
  }
  if (!Array.isArray(features)) return [];
  return [...new Set(features.filter((f): f is string => typeof f === "string" && f !== ""))].sort();
}

/**
 * `drvs` ordered inputs before dependents: depth-first from `roots` in their order (then any
 * left over), inputs in sorted order; iterative, so a chain of 100,000 cannot overflow the stack.
 */
export function topologicalOrder(roots: readonly string[], infos: ReadonlyMap<string, DerivationInfo>): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (start: string) => {
    if (!infos.has(start) || state.has(start)) return;
    const stack: Array<{ drv: string; next: number }> = [{ drv: start, next: 0 }];
    state.set(start, "visiting");
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const inputs = infos.get(frame.drv)!.inputDrvs;
      let pushed = false;
      while (frame.next < inputs.length) {
        const input = inputs[frame.next++]!;
        if (infos.has(input) && !state.has(input)) {
          state.set(input, "visiting");
          stack.push({ drv: input, next: 0 });
          pushed = true;
          break;
        }
      }
      if (!pushed) {
        stack.pop();
        state.set(frame.drv, "done");
        order.push(frame.drv);
      }
    }
  };
  for (const root of roots) visit(root);
  for (const drv of [...infos.keys()].sort()) visit(drv);
  return order;
}
