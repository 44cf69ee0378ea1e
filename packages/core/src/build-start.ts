/**
 * What a build's start needs, carried with its work (docs/scale.md, "The per-build request
 * budget"): where to place it (Nix's rule and its needs, core obtaining.ts) and what its `build`
 * tells the agent of its inputs. A dependent's item keeps each built input's outputs and
 * sources as its pending input is cleared, so whoever queues it can put them in the build-queue
 * message, and the dispatch that receives it reads nothing before the lease. Pure.
 */
import { MAX_FRAME_BYTES } from "@nimbus/protocol";
import { buildNeeds } from "./obtaining.ts";

/** What a dependent keeps of one input Nimbus built: its output paths and where they are. */
export interface BuiltInput {
  drvPath: string;
  outputs: readonly string[];
  sources?: readonly string[];
}

/** The entry of a settled input (its item's `outputs` and `sources`). */
export function builtInputOf(input: { drvPath: string; outputs: Readonly<Record<string, string>>; sources?: Iterable<string> }): BuiltInput {
  const sources = input.sources === undefined ? [] : [...input.sources].sort();
  return { drvPath: input.drvPath, outputs: Object.values(input.outputs).sort(), ...(sources.length > 0 ? { sources } : {}) };
}

const utf8 = new TextEncoder();
const bytesOf = (value: unknown) => utf8.encode(JSON.stringify(value)).length;

/**
 * An entry of more bytes than this is not kept on the dependent's item (its build's start then
 * reads its inputs): with at most INPUTS_ON_ITEM inputs there, the entries stay under 64 KB
 * whatever an input's outputs, far from DynamoDB's 400 KB with the rest of the item.
 */
export const BUILT_INPUT_BYTES = 1024;

export const keptOnItem = (entry: BuiltInput): boolean => bytesOf(entry) <= BUILT_INPUT_BYTES;

/** What a dependent's item says of its inputs (storage/inputs-on-item.ts) and of those built. */
export interface InputsOnHand {
  inputsOnItem?: true;
  inputRows?: true;
  inputs?: ReadonlySet<string>;
  inputsBuilt?: readonly BuiltInput[];
}

/**
 * Every input of the derivation, each with its outputs, from its item and what the caller has
 * at hand (`known`: the input a settle just settled); undefined when some are not at hand —
 * inputs kept as rows, or an entry left out — and must be read.
 */
export function inputsAtHand(item: InputsOnHand, known: readonly BuiltInput[] = []): BuiltInput[] | undefined {
  if (!item.inputsOnItem || item.inputRows) return undefined;
  const byPath = new Map<string, BuiltInput>();
  for (const entry of [...(item.inputsBuilt ?? []), ...known]) byPath.set(entry.drvPath, entry);
  const found: BuiltInput[] = [];
  for (const input of [...(item.inputs ?? [])].sort()) {
    const entry = byPath.get(input);
    if (!entry) return undefined;
    found.push(entry);
  }
  return found;
}

/** Room for the input paths in a build message: the rest of one frame stays for the envelope. */
export const INPUTS_BUDGET_BYTES = MAX_FRAME_BYTES - 4 * 1024;

/** At most this many caches are named in a build (the protocol's bound). */
const MAX_INPUT_CACHES = 64;

/**
 * What a `build` tells the agent of its inputs: their outputs, sorted, as many as fit in one
 * frame (Nix fetches any others itself while building), and the caches holding them.
 */
export function taskInputs(inputs: readonly Pick<BuiltInput, "outputs" | "sources">[]): { inputs?: string[]; inputCaches?: string[] } {
  const paths: string[] = [];
  let bytes = 0;
  for (const path of [...new Set(inputs.flatMap((i) => i.outputs))].sort()) {
    bytes += utf8.encode(path).length + 3;
    if (bytes > INPUTS_BUDGET_BYTES) break;
    paths.push(path);
  }
  const caches = [...new Set(inputs.flatMap((i) => (i.sources ?? []).filter((s) => s.startsWith("cache:")).map((s) => s.slice("cache:".length))))].sort();
  return { ...(paths.length > 0 ? { inputs: paths } : {}), ...(caches.length > 0 ? { inputCaches: caches.slice(0, MAX_INPUT_CACHES) } : {}) };
}

/** What a build-queue message carries for its start: placement, and the `build`'s inputs. */
export interface BuildStart {
  system: string;
  requiredFeatures: string[];
  needs: string[][];
  inputs?: string[];
  inputCaches?: string[];
}

/** A start of more bytes than this is left out of the message (SQS takes 256 KB); its claim reads instead. */
export const BUILD_START_BYTES = 64 * 1024;

/**
 * The start to carry in a derivation's build-queue message, its inputs at hand (`inputsAtHand`);
 * undefined when it would not fit: the message then names the derivation only.
 */
export function buildStartOf(
  drv: { system: string; requiredFeatures: readonly string[]; needs?: readonly (readonly string[])[] },
  inputs: readonly BuiltInput[],
): BuildStart | undefined {
  const start: BuildStart = { system: drv.system, requiredFeatures: [...drv.requiredFeatures], needs: buildNeeds(drv.needs, inputs), ...taskInputs(inputs) };
  return bytesOf(start) <= BUILD_START_BYTES ? start : undefined;
}
