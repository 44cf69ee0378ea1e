/**
 * A derivation's inputs on its own item (docs/reliability.md, "No item grows with a
 * derivation's inputs"): a registration that creates it with few inputs (INPUTS_ON_ITEM)
 * writes them there (`inputs`, and `pendingInputs` for those without outputs yet) in the same
 * write that creates it, instead of two rows per input in DerivationInputs and PendingInputs.
 * More inputs than that, a split event's parts, and what a later registration adds (a restart,
 * a part) are rows; such a registration marks the item (`inputRows`) before it writes them, so
 * readers know when to look at the rows too.
 */
import { keptOnItem, type BuiltInput } from "@nimbus/core";
import type { DerivationItem } from "./items.ts";
import { Derivations } from "./tables.ts";

/**
 * At most this many inputs, of at most this many bytes of paths in all, go on the item: its two
 * sets then stay under 32 KB whatever paths an evaluator sends, far from DynamoDB's 400 KB
 * with the rest of the item.
 */
export const INPUTS_ON_ITEM = 64;
export const INPUT_BYTES_ON_ITEM = 16_000;

/** What a derivation's item says of its inputs. */
export type InputsView = Pick<DerivationItem, "inputsOnItem" | "inputs" | "pendingInputs" | "inputRows" | "inputsBuilt">;

/** Whether the rows may hold inputs of it too: its inputs are not (only) on the item, or it is not there yet. */
export const rowsMayHold = (drv: InputsView | undefined): boolean => !drv?.inputsOnItem || drv.inputRows === true;

/** The inputs on the item, and those of them it still waits for: none unless it keeps its inputs there (an older item's sets are not). */
export const onItem = (drv: InputsView | undefined): { inputs: ReadonlySet<string>; pending: ReadonlySet<string> } =>
  drv?.inputsOnItem ? { inputs: drv.inputs ?? new Set(), pending: drv.pendingInputs ?? new Set() } : { inputs: new Set(), pending: new Set() };

/**
 * The fields that put `inputs` on a new item, `pending` of them still without outputs, and the
 * outputs of those `built` (each entry within core's bound); none when there are too many for
 * the item (they are rows).
 */
export function inputsOnItemFields(inputs: readonly string[], pending: readonly string[], built: readonly BuiltInput[] = []): InputsView | undefined {
  const unique = new Set(inputs);
  if (unique.size > INPUTS_ON_ITEM || [...unique].reduce((bytes, path) => bytes + Buffer.byteLength(path), 0) > INPUT_BYTES_ON_ITEM) return undefined;
  const kept = built.filter((entry) => unique.has(entry.drvPath) && !pending.includes(entry.drvPath) && keptOnItem(entry));
  return {
    inputsOnItem: true,
    ...(inputs.length ? { inputs: new Set(inputs) } : {}),
    ...(pending.length ? { pendingInputs: new Set(pending) } : {}),
    ...(kept.length ? { inputsBuilt: kept.map(builtEntry) } : {}),
  };
}

/** A built input's entry as the item stores it (storage/items.ts `inputsBuilt`). */
export const builtEntry = (entry: BuiltInput): NonNullable<DerivationItem["inputsBuilt"]>[number] => ({
  drvPath: entry.drvPath,
  outputs: [...entry.outputs],
  ...(entry.sources ? { sources: [...entry.sources] } : {}),
});

/**
 * A registration is about to write input rows of an item that keeps its inputs on it: it says
 * so first, so no reader misses the rows. Nothing when it does not exist or keeps no inputs on it.
 */
export async function markInputRows(drvPath: string): Promise<void> {
  await Derivations.update(
    { drvPath },
    {
      UpdateExpression: "SET inputRows = :yes",
      ConditionExpression: "inputsOnItem = :yes AND attribute_not_exists(inputRows)",
      ExpressionAttributeValues: { ":yes": true },
    },
  );
}

/** Reads what the item says of its inputs (consistently), unless the caller has it. */
export async function inputsView(drvPath: string, item?: InputsView): Promise<InputsView | undefined> {
  return item ?? (await Derivations.get({ drvPath }));
}
