/**
 * A built derivation's outputs, read from its `.drv` file (Nix's ATerm: `Derive([("out",
 * "/nix/store/…","",""),…],[("/nix/store/…-in.drv",["out"]),…],…)`) rather than asked of a
 * `nix show-derivation` process per build; and whether everything its build needs is in this
 * store already, so Nix need not ask the substituters (docs/agent.md, "Builds").
 */
import { access, readFile } from "node:fs/promises";

/** What the head of a `.drv` says: its outputs (name → path) and its input derivations (path → the outputs it uses). */
export interface DerivationHead {
  outputs: Record<string, string>;
  inputDrvs: Record<string, string[]>;
}

/** A `.drv` path in the store: only such paths are looked at (a hostile `.drv` names no other file). */
const DRV_PATH = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+\.drv$/;

/** Outputs and input derivations from the text of a `.drv`; undefined when it is not the `Derive(…)` form this reads. */
export function parseDerivationHead(text: string): DerivationHead | undefined {
  const prefix = "Derive([";
  if (!text.startsWith(prefix)) return undefined;
  let at = prefix.length;
  const string = (): string | undefined => {
    if (text[at] !== '"') return undefined;
    at++;
    let value = "";
    for (;;) {
      const c = text[at++];
      if (c === undefined) return undefined;
      if (c === '"') return value;
      if (c !== "\\") {
        value += c;
        continue;
      }
      const e = text[at++];
      if (e === undefined) return undefined;
      value += e === "n" ? "\n" : e === "r" ? "\r" : e === "t" ? "\t" : e;
    }
  };
  const expect = (c: string): boolean => text[at++] === c;
  /** `item,item,…]` after an opening `[`; false when an item or the separators are not there. */
  const list = (item: () => boolean): boolean => {
    if (text[at] === "]") {
      at++;
      return true;
    }
    for (;;) {
      if (!item()) return false;
      const next = text[at++];
      if (next === "]") return true;
      if (next !== ",") return false;
    }
  };
  const outputs: Record<string, string> = {};
  const output = (): boolean => {
    if (!expect("(")) return false;
    const fields: string[] = [];
    for (let i = 0; i < 4; i++) {
      if (i > 0 && !expect(",")) return false;
      const field = string();
      if (field === undefined) return false;
      fields.push(field);
    }
    if (!expect(")")) return false;
    const [name, path] = fields as [string, string];
    // A floating content-addressed output has no path until it is built: left out, as `nix show-derivation` does.
    if (path !== "") outputs[name] = path;
    return true;
  };
  if (!list(output)) return undefined;
  const inputDrvs: Record<string, string[]> = {};
  const inputDrv = (): boolean => {
    if (!expect("(")) return false;
    const drvPath = string();
    if (drvPath === undefined || !expect(",") || !expect("[")) return false;
    const names: string[] = [];
    const name = (): boolean => {
      const value = string();
      if (value === undefined) return false;
      names.push(value);
      return true;
    };
    if (!list(name)) return false;
    inputDrvs[drvPath] = names;
    return expect(")");
  };
  if (!expect(",") || !expect("[") || !list(inputDrv)) return undefined;
  return { outputs, inputDrvs };
}

/** Output name → store path, from the text of a `.drv`; undefined when it is not the `Derive(…)` form this reads. */
export const parseDerivationOutputs = (text: string): Record<string, string> | undefined => parseDerivationHead(text)?.outputs;

async function readHead(drvPath: string): Promise<DerivationHead | undefined> {
  let text: string;
  try {
    text = await readFile(drvPath, "utf8");
  } catch {
    return undefined;
  }
  return parseDerivationHead(text);
}

/** The outputs of `drvPath` from its file in the store; undefined when the file cannot be read or parsed here. */
export async function readDerivationOutputs(drvPath: string): Promise<Record<string, string> | undefined> {
  return (await readHead(drvPath))?.outputs;
}

const present = (storePath: string) =>
  access(storePath).then(
    () => true,
    () => false,
  );

/**
 * Whether this store holds the `.drv` (with it, its closure of `.drv`s and sources) and every
 * output of its inputs that it uses: then its build needs nothing a substituter would give.
 * False whenever that cannot be told from the files (a `.drv` not here or not read, a floating
 * output, an input's output missing): Nix then substitutes as usual.
 */
export async function inputsInStore(drvPath: string): Promise<boolean> {
  if (!DRV_PATH.test(drvPath)) return false;
  const head = await readHead(drvPath);
  if (head === undefined) return false;
  const needed = await Promise.all(
    Object.entries(head.inputDrvs).map(async ([inputDrv, names]) => {
      if (!DRV_PATH.test(inputDrv)) return undefined;
      const outputs = (await readHead(inputDrv))?.outputs;
      return outputs && names.every((name) => outputs[name] !== undefined) ? names.map((name) => outputs[name]!) : undefined;
    }),
  );
  if (needed.some((paths) => paths === undefined)) return false;
  return (await Promise.all(needed.flat().map((p) => present(p!)))).every(Boolean);
}
