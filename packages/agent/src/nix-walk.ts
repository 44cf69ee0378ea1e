/**
 * Finding the attributes of ci.nix (or a flake) that are derivations: one `nix-instantiate
 * --eval` of a walker expression for the whole file, `builtins.tryEval` per attribute, and
 * extra runs only for attributes that fail (to get Nix's message, or to isolate an error
 * `tryEval` cannot catch).
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { AttributePath } from "@nimbus/protocol";
import { mapConcurrently, runProcess } from "./process.ts";

/** Where the attributes come from. */
export type WalkSource =
  | { kind: "file"; file: string }
  | {
      kind: "flake";
      flakeRef: string;
      /** Passed to `herculesCI` when the flake defines it as a function. */
      herculesCIArgs: unknown;
    };

export interface WalkOptions {
  source: WalkSource;
  /** Scratch directory of the task: the walker and its inputs are written here. */
  directory: string;
  /** The checkout: Nix runs there. */
  cwd: string;
  systems: string[];
  optionArgs: string[];
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** Makes Nix's messages readable (e.g. the checkout's path removed). */
  message: (stderr: string) => string;
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
{ source, file ? "", flakeRef ? "", systemsJson ? "[]", argsJson ? "{}", rootsFile, catch ? "1", mode ? "walk" }:
let
  try = if catch == "1" then builtins.tryEval else (e: { success = builtins.seq e true; value = e; });
  recurseAll = source == "flake";
  systems = builtins.fromJSON systemsJson;

  fromFile = let loaded = import file; in if builtins.isFunction loaded then loaded { } else loaded;

  fromFlake =
    let
      flake = builtins.getFlake flakeRef;
      declared = flake.herculesCI or null;
      herculesCI = if builtins.isFunction declared then declared (builtins.fromJSON argsJson) else declared;
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
       else if catch == "1" then failed path
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

  roots = builtins.fromJSON (builtins.readFile rootsFile);
in
if mode == "expand" then expand (builtins.head roots)
else builtins.concatMap (path: walk path (at path)) roots
`;

type WalkEntry = { path: string[]; drvPath: string } | { path: string[]; failed: true };
type Run<T> = { ok: true; value: T } | { ok: false; message: string };

export async function walkAttributes(options: WalkOptions): Promise<WalkResult> {
  const walkerPath = path.join(options.directory, "nimbus-walk.nix");
  await writeFile(walkerPath, WALKER);
  let runs = 0;

  const run = async <T>(roots: string[][], mode: "walk" | "expand", catching: boolean): Promise<Run<T>> => {
    const rootsFile = path.join(options.directory, `roots-${runs++}.json`);
    // A file, not an argument: a bisection step can name tens of thousands of paths.
    await writeFile(rootsFile, JSON.stringify(roots));
    const source = options.source;
    const args = [
      "--eval",
      "--strict",
      "--json",
      // Forcing drvPath writes the .drv files to the store only in read-write mode.
      "--read-write-mode",
      ...(source.kind === "flake" ? ["--extra-experimental-features", "nix-command flakes"] : []),
      ...options.optionArgs,
      walkerPath,
      ...["--argstr", "source", source.kind],
      ...(source.kind === "file" ? ["--argstr", "file", source.file] : []),
      ...(source.kind === "flake"
        ? ["--argstr", "flakeRef", source.flakeRef, "--argstr", "argsJson", JSON.stringify(source.herculesCIArgs)]
        : []),
      ...["--argstr", "systemsJson", JSON.stringify(options.systems)],
      ...["--argstr", "rootsFile", rootsFile],
      ...["--argstr", "catch", catching ? "1" : "0"],
      ...["--argstr", "mode", mode],
    ];
    const result = await runProcess("nix-instantiate", args, { cwd: options.cwd, env: options.env, signal: options.signal });
    if (options.signal.aborted) throw options.signal.reason;
    if (result.code !== 0) return { ok: false, message: options.message(result.stderr) };
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

/** Nix's order: name by name, each compared as strings. */
export function comparePaths(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}
