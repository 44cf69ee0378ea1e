import { EdgeItem } from "./items.ts";
import { Edges } from "./tables.ts";

/** Records that `dependent` needs each input (idempotent puts). */
export async function putEdges(dependent: string, inputs: readonly string[]): Promise<void> {
  await Edges.batchPut(inputs.map((inputDrv): EdgeItem => ({ inputDrv, dependentDrv: dependent })));
}


/**
 * The derivations that need `drvPath`, in pages, in order, from after `after` on (a settle that
 * stopped goes on there), read consistently: an edge put just before its dependent looked at
 * this input must be seen here (flow/register-derivation.ts).
 */
export async function* dependentPages(drvPath: string, after?: string): AsyncGenerator<string[]> {
  const query = after
    ? { KeyConditionExpression: "inputDrv = :drv AND dependentDrv > :after", ExpressionAttributeValues: { ":drv": drvPath, ":after": after } }
    : { KeyConditionExpression: "inputDrv = :drv", ExpressionAttributeValues: { ":drv": drvPath } };
  for await (const page of Edges.pages({ ...query, ConsistentRead: true }, EdgeItem.pick({ dependentDrv: true }), { pageSize: DEPENDENTS_PER_PAGE })) {
    if (page.items.length) yield page.items.map((e) => e.dependentDrv);
  }
}

/** Dependents told between two notes of a settle's progress. */
export const DEPENDENTS_PER_PAGE = 100;
