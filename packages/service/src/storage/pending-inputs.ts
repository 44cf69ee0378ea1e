/**
 * The inputs a waiting derivation still waits for (docs/reliability.md, "No job hangs"): on its
 * item (`pendingInputs`, storage/inputs-on-item.ts) and one row each past that — a row is put
 * before the derivation can wait on it, and an input is taken off the item or its row deleted
 * once it has outputs; all idempotent. Reads are consistent: "nothing left" decides readiness.
 */
import { keptOnItem, type BuiltInput } from "@nimbus/core";
import { DerivationItem, PendingInputItem } from "./items.ts";
import { builtEntry, inputsView, onItem, rowsMayHold, type InputsView } from "./inputs-on-item.ts";
import { Derivations, PendingInputs } from "./tables.ts";

const unique = (inputs: readonly string[]) => [...new Set(inputs)];

/** `drvPath` waits for each of `inputs` until they are cleared; `by` is the job registering them. */
export async function putPendingInputs(drvPath: string, inputs: readonly string[], by?: string): Promise<void> {
  await PendingInputs.batchPut(unique(inputs).map((inputDrv): PendingInputItem => ({ drvPath, inputDrv, ...(by ? { by } : {}) })));
}

/** Removes the rows `by` wrote (one a later registration wrote again is kept); how many went. */
export async function dropPendingInputsBy(drvPath: string, by: string): Promise<number> {
  const rows = await PendingInputs.query({ KeyConditionExpression: "drvPath = :drv", ExpressionAttributeValues: { ":drv": drvPath }, ConsistentRead: true });
  let dropped = 0;
  for (const row of rows.filter((r) => r.by === by)) {
    if (await PendingInputs.delete({ drvPath, inputDrv: row.inputDrv }, { expression: "#by = :by", names: { "#by": "by" }, values: { ":by": by } })) dropped++;
  }
  return dropped;
}

/**
 * These inputs of `drvPath` have outputs: it no longer waits for them. Off the item when it
 * keeps them there (one write, which returns the item after it: as good as a consistent read
 * made then), and their rows deleted when rows may hold some (or it is not there yet: a
 * registration writing rows first).
 */
export async function clearPendingInputs(drvPath: string, inputs: readonly string[], built: readonly BuiltInput[] = []): Promise<DerivationItem | undefined> {
  const cleared = unique(inputs);
  if (cleared.length === 0) return undefined;
  const kept = built.filter((entry) => cleared.includes(entry.drvPath) && keptOnItem(entry));
  if (kept.length > 0) {
    const recorded = await clearRecording(drvPath, cleared, kept);
    if (recorded || cleared.length === 1) {
      // Refused with one input: it was not pending on the item (a repeat, or a row), so rows alone may hold it.
      if (rowsMayHold(recorded)) await PendingInputs.batchDelete(cleared.map((inputDrv) => ({ drvPath, inputDrv })));
      return recorded;
    }
  }
  const after = await Derivations.updateReturning(
    { drvPath },
    {
      UpdateExpression: "DELETE pendingInputs :inputs",
      ConditionExpression: "inputsOnItem = :yes",
      ExpressionAttributeValues: { ":inputs": new Set(cleared), ":yes": true },
    },
    "ALL_NEW",
  );
  if (rowsMayHold(after)) await PendingInputs.batchDelete(cleared.map((inputDrv) => ({ drvPath, inputDrv })));
  return after;
}

/**
 * The clear, with the cleared inputs' outputs added to the item (`inputsBuilt`) in the same
 * write — only while each is pending on the item, so an entry is added once at most and only
 * for an input the item lists: at most INPUTS_ON_ITEM entries of BUILT_INPUT_BYTES each.
 */
function clearRecording(drvPath: string, cleared: readonly string[], kept: readonly BuiltInput[]): Promise<DerivationItem | undefined> {
  return Derivations.updateReturning(
    { drvPath },
    {
      UpdateExpression: "DELETE pendingInputs :inputs SET inputsBuilt = list_append(if_not_exists(inputsBuilt, :none), :built)",
      ConditionExpression: ["inputsOnItem = :yes", ...cleared.map((_, i) => `contains(pendingInputs, :input${i})`)].join(" AND "),
      ExpressionAttributeValues: {
        ":inputs": new Set(cleared),
        ":yes": true,
        ":none": [],
        ":built": kept.map(builtEntry),
        ...Object.fromEntries(cleared.map((input, i) => [`:input${i}`, input])),
      },
    },
    "ALL_NEW",
  );
}

/**
 * Whether `drvPath` still waits for any input: its item read consistently (or the one the
 * caller just read), and at most one row when rows may hold some.
 */
export async function hasPendingInputs(drvPath: string, item?: InputsView): Promise<boolean> {
  const drv = await inputsView(drvPath, item);
  if (onItem(drv).pending.size > 0) return true;
  if (!rowsMayHold(drv)) return false;
  const rows = await PendingInputs.firstPage({
    KeyConditionExpression: "drvPath = :drv",
    ExpressionAttributeValues: { ":drv": drvPath },
    ConsistentRead: true,
    Limit: 1,
  });
  return rows.length > 0;
}

/** Every input `drvPath` still waits for (a derivation started again without its event reads them). */
export async function pendingInputsOf(drvPath: string): Promise<string[]> {
  const drv = await inputsView(drvPath);
  const pending = [...onItem(drv).pending];
  if (!rowsMayHold(drv)) return pending;
  const rows = await PendingInputs.query(
    { KeyConditionExpression: "drvPath = :drv", ExpressionAttributeValues: { ":drv": drvPath }, ConsistentRead: true },
    PendingInputItem.pick({ inputDrv: true }),
  );
  return unique([...pending, ...rows.map((row) => row.inputDrv)]);
}
