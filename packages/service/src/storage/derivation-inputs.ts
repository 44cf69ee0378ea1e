/**
 * The inputs a derivation was registered as waiting for, kept once they are built: a build's
 * needs include where each one's outputs are (core `buildNeeds`). On its item when its creating
 * registration had few (`inputs`, storage/inputs-on-item.ts), one row each otherwise and for
 * what later registrations add, so no item grows with the number of inputs. Writes are
 * idempotent; the inputs of every registration that created, restarted or added a part to it accumulate.
 */
import { DerivationInputItem } from "./items.ts";
import { inputsView, onItem, rowsMayHold, type InputsView } from "./inputs-on-item.ts";
import { DerivationInputs } from "./tables.ts";

/** Records that `drvPath` waits for each of `inputs`; `by` is the job registering them. */
export async function putDerivationInputs(drvPath: string, inputs: readonly string[], by?: string): Promise<void> {
  await DerivationInputs.batchPut([...new Set(inputs)].map((inputDrv): DerivationInputItem => ({ drvPath, inputDrv, ...(by ? { by } : {}) })));
}

/** Removes the rows `by` wrote (one a later registration wrote again is kept). */
export async function dropDerivationInputsBy(drvPath: string, by: string): Promise<void> {
  const rows = await DerivationInputs.query({ KeyConditionExpression: "drvPath = :drv", ExpressionAttributeValues: { ":drv": drvPath }, ConsistentRead: true });
  for (const row of rows.filter((r) => r.by === by)) {
    await DerivationInputs.delete({ drvPath, inputDrv: row.inputDrv }, { expression: "#by = :by", names: { "#by": "by" }, values: { ":by": by } });
  }
}

/** Every input `drvPath` was registered as waiting for (consistent reads; `item` when the caller just read it). */
export async function derivationInputsOf(drvPath: string, item?: InputsView): Promise<string[]> {
  const drv = await inputsView(drvPath, item);
  const listed = [...onItem(drv).inputs];
  if (!rowsMayHold(drv)) return listed;
  const rows = await DerivationInputs.query(
    { KeyConditionExpression: "drvPath = :drv", ExpressionAttributeValues: { ":drv": drvPath }, ConsistentRead: true },
    DerivationInputItem.pick({ inputDrv: true }),
  );
  return [...new Set([...listed, ...rows.map((row) => row.inputDrv)])];
}

/** Whether some registration of `drvPath` listed `inputDrv` (its item read consistently, and one row when rows may hold it). */
export async function isDerivationInput(drvPath: string, inputDrv: string, item?: InputsView): Promise<boolean> {
  const drv = await inputsView(drvPath, item);
  if (onItem(drv).inputs.has(inputDrv)) return true;
  if (!rowsMayHold(drv)) return false;
  return (await DerivationInputs.get({ drvPath, inputDrv })) !== undefined;
}
