/**
 * Finding the attributes of ci.nix (or a flake) that are derivations: one `nix-instantiate
 * --eval` of a walker expression for the whole file, `builtins.tryEval` per attribute, and
 * extra runs only for attributes that fail (to get Nix's message, or to isolate an error
 * `tryEval` cannot catch). Every run is the repository's code: it goes through `evaluate`
 * (the isolated evaluator, docs/security.md) in Nix's restricted mode, pure mode for flakes.
 */
import type { AttributePath } from "@nimbus/protocol";
import { mapConcurrently, type RunResult } from "./process.ts";

/** Where the attributes come from. */
export type WalkSource =
  | { kind: "file"; file: string }
  | {
      kind: "flake";
      flakeRef: string;
      /** Passed to `herculesCI` when the flake defines it as a function. */
      herculesCIArgs: unknown;
    };

/** What one evaluator run may print before it is stopped. */
export interface OutputLimits {
  maxStdoutBytes: number;
  inspectStdout: (chunk: Buffer) => string | undefined;
}

/** Runs `nix-instantiate <args>` with `stdin` as the evaluator (confined, limited). */
export type Evaluator = (args: string[], stdin: string, limits: OutputLimits) => Promise<RunResult>;

export interface WalkOptions {
  source: WalkSource;
  /** The checkout: in restricted mode, the only files the evaluation may read. */
  repo: string;
  systems: string[];
  /** The agent's settings (`--option NAME VALUE`…). */
  optionArgs: string[];
  /** Nix's `allowed-uris`. */
  allowedUris: string[];
  evaluate: Evaluator;
  signal: AbortSignal;
  /** Makes Nix's messages readable (e.g. the checkout's path removed). */
  message: (stderr: string) => string;
  /** Most attributes and attribute errors together. */
  maxAttributes: number;
  /** Most bytes of walker output, all runs together. */
  maxOutputBytes: number;
}

export interface FoundAttribute {
  path: AttributePath;
  drvPath: string;
}

export interface AttributeFailure {
  path: AttributePath;
  message: string;
}

export interface WalkResult {
  /** In attribute order: names sorted at each level, depth first. */
  attributes: FoundAttribute[];
  errors: AttributeFailure[];
}

/** The file (or flake) cannot be evaluated at all: the evaluation fails with Nix's message. */
export class EvaluationFailure extends Error {
  override readonly name = "EvaluationFailure";
}

/** The protocol's attribute paths: at most 32 names of 1–256 characters. */
const MAX_DEPTH = 32;
const MAX_NAME = 256;
/** Failing attributes explained at once (each is its own nix-instantiate). */
const EXPLAIN_CONCURRENCY = 4;

/**
 * Walks like nix-build/Hercules: derivations are attributes; a nested set is followed when it
 * has `recurseForDerivations = true` (every set, for flakes, as Hercules does for
 * `herculesCI…outputs`). `catch = "0"` re-runs without `tryEval` so Nix prints the real error.
 */
const WALKER = `# Written by the Nimbus agent: lists the derivations to build (see docs/agent.md).
argsJson:
let
  inherit (builtins.fromJSON argsJson) source file flakeRef systems herculesCIArgs roots catch mode;
  try = if catch then builtins.tryEval else (e: { success = builtins.seq e true; value = e; });
  recurseAll = source == "flake";

  fromFile = let loaded = import file; in if builtins.isFunction loaded then loaded { } else loaded;

  fromFlake =
    let
      flake = builtins.getFlake flakeRef;
      declared = flake.herculesCI or null;
      herculesCI = if builtins.isFunction declared then declared herculesCIArgs else declared;
      perSystem = name: builtins.listToAttrs (builtins.concatMap
        (system: if flake ? \${name} && flake.\${name} ? \${system} then [ { name = system; value = flake.\${name}.\${system}; } ] else [ ])
        systems);
    in
    if herculesCI != null && herculesCI ? onPush
    then herculesCI.onPush.default.outputs
    else { checks = perSystem "checks"; packages = perSystem "packages"; };

  top = if source == "flake" then fromFlake else fromFile;
  at = path: builtins.foldl' (value: name: value.\${name}) top path;
  usable = name: name != "" && builtins.stringLength name <= ${MAX_NAME};
  follows = path: x: path == [ ] || recurseAll || (x.recurseForDerivations or false) == true;
  failed = path: [ { inherit path; failed = true; } ];

  walk = path: value:
    let r = try value; x = r.value; in
    if !r.success then failed path
    else if !(builtins.isAttrs x) then
      (if path != [ ] then [ ]
       else if catch then failed path
       else throw "the top-level value must be an attribute set (or a function returning one), not \${builtins.typeOf x}")
    else
      let isDrv = try ((x.type or null) == "derivation"); in
      if !isDrv.success then failed path
      else if isDrv.value then
        let d = try x.drvPath; in
        if d.success then [ { inherit path; drvPath = d.value; } ] else failed path
      else
        let follow = try (follows path x); in
        if !follow.success then failed path
        else if !follow.value || builtins.length path >= ${MAX_DEPTH} then [ ]
        else builtins.concatMap (name: walk (path ++ [ name ]) x.\${name}) (builtins.filter usable (builtins.attrNames x));

  expand = path:
    let x = at path; in
    if builtins.isAttrs x && (x.type or null) != "derivation" && follows path x && builtins.length path < ${MAX_DEPTH}
    then { set = true; names = builtins.filter usable (builtins.attrNames x); }
    else { set = false; names = [ ]; };
in
if mode == "expand" then expand (builtins.head roots)
else builtins.concatMap (path: walk path (at path)) roots
`;

type WalkEntry = { path: string[]; drvPath: string } | { path: string[]; failed: true };
type Run<T> = { ok: true; value: T } | { ok: false; message: string };

/** Walker output past this many bytes is not read (the whole evaluation fails). */
export const MAX_WALK_OUTPUT_BYTES = 64 * 1024 * 1024;

export async function walkAttributes(options: WalkOptions): Promise<WalkResult> {
  const source = options.source;
  // Nix settings no nixSettings entry can loosen (the config refuses them): restricted mode,
  // no search path but the checkout, allowed-uris as configured; pure mode for a flake.
  const restricted = [
    ...["--option", "restrict-eval", "true"],
    ...["--option", "allowed-uris", options.allowedUris.join(" ")],
    ...["--option", "nix-path", ""],
    ...["--option", "allow-unsafe-native-code-during-evaluation", "false"],
    ...(source.kind === "flake"
      ? ["--extra-experimental-features", "nix-command flakes", "--option", "pure-eval", "true"]
      : ["-I", `repository=${options.repo}`]),
  ];
  let bytesLeft = options.maxOutputBytes;
  let entriesFound = 0;

  const run = async <T>(roots: string[][], mode: "walk" | "expand", catching: boolean): Promise<Run<T>> => {
    const args = {
      source: source.kind,
      file: source.kind === "file" ? source.file : "",
      flakeRef: source.kind === "flake" ? source.flakeRef : "",
      herculesCIArgs: source.kind === "flake" ? source.herculesCIArgs : {},
      systems: options.systems,
      // Inline, not a file or an argument: a bisection step can name tens of thousands of paths.
      roots,
      catch: catching,
      mode,
    };
    // From stdin: in pure mode Nix reads no file outside the store, the walker's included.
    const expression = `(${WALKER}) ${nixString(JSON.stringify(args))}\n`;
    const entries = new TopLevelEntryCounter();
    const entriesAllowed = options.maxAttributes - entriesFound;
    const result = await options.evaluate(
      [
        "--eval",
        "--strict",
        "--json",
        // Forcing drvPath writes the .drv files to the store only in read-write mode.
        "--read-write-mode",
        ...options.optionArgs,
        ...restricted,
        "-",
      ],
      expression,
      {
        maxStdoutBytes: bytesLeft,
        inspectStdout: (chunk) =>
          mode === "walk" && entries.push(chunk) > entriesAllowed
            ? `it reports more than ${options.maxAttributes} attributes (evaluationMaxAttributes)`
            : undefined,
      },
    );
    if (options.signal.aborted) throw options.signal.reason;
    if (result.stopped !== undefined) {
      const why = result.stopped.startsWith("it printed more than")
        ? `its attributes take more than ${sizeText(options.maxOutputBytes)} to list`
        : result.stopped;
      throw new EvaluationFailure(`the evaluation was stopped: ${why}`);
    }
    if (result.code !== 0) return { ok: false, message: options.message(result.stderr) };
    bytesLeft -= Buffer.byteLength(result.stdout);
    return { ok: true, value: JSON.parse(result.stdout) as T };
  };

  const attributes: FoundAttribute[] = [];
  const errors: AttributeFailure[] = [];
  const toExplain: string[][] = [];

  // Bisects on a run that failed as a whole (abort, type errors: what tryEval lets through).
  const explore = async (roots: string[][]): Promise<void> => {
    const walked = await run<WalkEntry[]>(roots, "walk", true);
    if (walked.ok) {
      for (const entry of walked.value) {
        if ("drvPath" in entry) attributes.push({ path: entry.path, drvPath: entry.drvPath });
        else toExplain.push(entry.path);
      }
      entriesFound += walked.value.length;
      return;
    }
    if (roots.length > 1) {
      const middle = Math.ceil(roots.length / 2);
      await explore(roots.slice(0, middle));
      await explore(roots.slice(middle));
      return;
    }
    const root = roots[0]!;
    const expanded = await run<{ set: boolean; names: string[] }>([root], "expand", true);
    if (expanded.ok && expanded.value.set && expanded.value.names.length > 0) {
      await explore(expanded.value.names.map((name) => [...root, name]));
      return;
    }
    const message = expanded.ok ? walked.message : expanded.message;
    if (root.length === 0) throw new EvaluationFailure(message);
    errors.push({ path: root, message });
  };

  await explore([[]]);

  if (toExplain.some((p) => p.length === 0)) {
    // The top-level value itself threw: nothing in the file can be evaluated.
    const again = await run<WalkEntry[]>([[]], "walk", false);
    throw new EvaluationFailure(again.ok ? "the top-level value failed to evaluate" : again.message);
  }
  const explained = await mapConcurrently(toExplain, EXPLAIN_CONCURRENCY, async (p) => {
    const again = await run<WalkEntry[]>([p], "walk", false);
    return { path: p, message: again.ok ? "evaluation failed (the error did not happen again when retried)" : again.message };
  });
  errors.push(...explained);

  attributes.sort((a, b) => comparePaths(a.path, b.path));
  errors.sort((a, b) => comparePaths(a.path, b.path));
  return { attributes, errors };
}

function sizeText(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  return Number.isInteger(mib) ? `${mib} MiB` : `${bytes} bytes`;
}

/** A Nix string literal holding `text`: every `\\`, `"` and `$` escaped. */
export function nixString(text: string): string {
  return `"${text.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
}

/**
 * Counts the elements of a top-level JSON array of objects as it streams by (the walker's
 * output), so a run reporting too many can be stopped before all of it is held in memory.
 */
export class TopLevelEntryCounter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  count = 0;

  /** Takes the next bytes; returns the count so far. */
  push(chunk: Buffer): number {
    for (const byte of chunk) {
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (byte === 0x5c) this.escaped = true;
        else if (byte === 0x22) this.inString = false;
      } else if (byte === 0x22) {
        this.inString = true;
      } else if (byte === 0x7b || byte === 0x5b) {
        if (byte === 0x7b && this.depth === 1) this.count++;
        this.depth++;
      } else if (byte === 0x7d || byte === 0x5d) {
        this.depth--;
      }
    }
    return this.count;
  }
}

/** Nix's order: name by name, each compared as strings. */
export function comparePaths(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}
