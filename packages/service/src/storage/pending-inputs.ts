/**
 * The inputs a waiting derivation still waits for, one row each (docs/reliability.md, "No job
 * hangs"): a row is put before the derivation can wait on it and deleted once the input has
 * outputs; both are idempotent. Reads are consistent: "nothing left" decides readiness.
 */
import { PendingInputItem } from "./items.ts";
import { PendingInputs } from "./tables.ts";

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

/** These inputs of `drvPath` have outputs: it no longer waits for them. */
export async function clearPendingInputs(drvPath: string, inputs: readonly string[]): Promise<void> {
  await PendingInputs.batchDelete(unique(inputs).map((inputDrv) => ({ drvPath, inputDrv })));
}

/** Whether `drvPath` still waits for any input (one consistent read of at most one row). */
export async function hasPendingInputs(drvPath: string): Promise<boolean> {
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
  const rows = await PendingInputs.query(
    { KeyConditionExpression: "drvPath = :drv", ExpressionAttributeValues: { ":drv": drvPath }, ConsistentRead: true },
    PendingInputItem.pick({ inputDrv: true }),
  );
  return rows.map((row) => row.inputDrv);
}

/** Rows of several derivations whose inputs have outputs (flow/register-batch.ts): deleted together. */
export async function clearPendingRows(rows: readonly { drvPath: string; inputDrv: string }[]): Promise<void> {
  const unique = new Map(rows.map((row) => [`${row.drvPath}\n${row.inputDrv}`, { drvPath: row.drvPath, inputDrv: row.inputDrv }]));
  await PendingInputs.batchDelete([...unique.values()]);
}
