/**
 * The inputs a derivation was registered as waiting for, one row each, kept once they are
 * built: a build's needs include where each one's outputs are (core `buildNeeds`). Rows, not a
 * set on the derivation, so no item grows with the number of inputs. Writes are idempotent;
 * the rows of every registration that created, restarted or added a part to it accumulate.
 */
import { DerivationInputItem } from "./items.ts";
import { DerivationInputs } from "./tables.ts";

/** Records that `drvPath` waits for each of `inputs`. */
export async function putDerivationInputs(drvPath: string, inputs: readonly string[]): Promise<void> {
  await DerivationInputs.batchPut([...new Set(inputs)].map((inputDrv): DerivationInputItem => ({ drvPath, inputDrv })));
}

/** Every input `drvPath` was registered as waiting for (a consistent read). */
export async function derivationInputsOf(drvPath: string): Promise<string[]> {
  const rows = await DerivationInputs.query(
    { KeyConditionExpression: "drvPath = :drv", ExpressionAttributeValues: { ":drv": drvPath }, ConsistentRead: true },
    DerivationInputItem.pick({ inputDrv: true }),
  );
  return rows.map((row) => row.inputDrv);
}
