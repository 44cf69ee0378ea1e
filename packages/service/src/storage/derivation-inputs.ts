/**
 * The inputs a derivation was registered as waiting for, one row each, kept once they are
 * built: a build's needs include where each one's outputs are (core `buildNeeds`). Rows, not a
 * set on the derivation, so no item grows with the number of inputs. Writes are idempotent;
 * the rows of every registration that created, restarted or added a part to it accumulate.
 */
import { DerivationInputItem } from "./items.ts";
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

/** Every input `drvPath` was registered as waiting for (a consistent read). */
export async function derivationInputsOf(drvPath: string): Promise<string[]> {
  const rows = await DerivationInputs.query(
    { KeyConditionExpression: "drvPath = :drv", ExpressionAttributeValues: { ":drv": drvPath }, ConsistentRead: true },
    DerivationInputItem.pick({ inputDrv: true }),
  );
  return rows.map((row) => row.inputDrv);
}

/** Whether some registration of `drvPath` listed `inputDrv` (a consistent read of one row). */
export async function isDerivationInput(drvPath: string, inputDrv: string): Promise<boolean> {
  return (await DerivationInputs.get({ drvPath, inputDrv })) !== undefined;
}
