/**
 * A built derivation's outputs, read from its `.drv` file (Nix's ATerm: `Derive([("out",
 * "/nix/store/…","",""),…],…)`) rather than asked of a `nix show-derivation` process per build.
 */
import { readFile } from "node:fs/promises";

/** Output name → store path, from the text of a `.drv`; undefined when it is not the `Derive(…)` form this reads. */
export function parseDerivationOutputs(text: string): Record<string, string> | undefined {
  const prefix = "Derive([";
  if (!text.startsWith(prefix)) return undefined;
  let at = prefix.length;
  const outputs: Record<string, string> = {};
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
  if (text[at] === "]") return outputs;
  for (;;) {
    if (!expect("(")) return undefined;
    const fields: string[] = [];
    for (let i = 0; i < 4; i++) {
      if (i > 0 && !expect(",")) return undefined;
      const field = string();
      if (field === undefined) return undefined;
      fields.push(field);
    }
    if (!expect(")")) return undefined;
    const [name, path] = fields as [string, string];
    // A floating content-addressed output has no path until it is built: left out, as `nix show-derivation` does.
    if (path !== "") outputs[name] = path;
    const next = text[at++];
    if (next === "]") return outputs;
    if (next !== ",") return undefined;
  }
}

/** The outputs of `drvPath` from its file in the store; undefined when the file cannot be read or parsed here. */
export async function readDerivationOutputs(drvPath: string): Promise<Record<string, string> | undefined> {
  let text: string;
  try {
    text = await readFile(drvPath, "utf8");
  } catch {
    return undefined;
  }
  return parseDerivationOutputs(text);
}
