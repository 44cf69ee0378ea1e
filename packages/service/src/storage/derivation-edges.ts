import { EdgeItem } from "./items.ts";
import { Edges } from "./tables.ts";

/** Records that `dependent` needs each input (idempotent puts). */
export async function putEdges(dependent: string, inputs: readonly string[]): Promise<void> {
  await Edges.batchPut(inputs.map((inputDrv): EdgeItem => ({ inputDrv, dependentDrv: dependent })));
}


/**
 * Up to `size` of the derivations that need `drvPath`, in order, from after `after` on (a
 * settle's page: docs/architecture.md, "Fan-out in pages"), read consistently: an edge put just
 * before its dependent looked at this input must be seen here (flow/register-derivation.ts).
 */
export async function dependentPage(drvPath: string, after: string | undefined, size: number): Promise<string[]> {
  const query = after
    ? { KeyConditionExpression: "inputDrv = :drv AND dependentDrv > :after", ExpressionAttributeValues: { ":drv": drvPath, ":after": after } }
    : { KeyConditionExpression: "inputDrv = :drv", ExpressionAttributeValues: { ":drv": drvPath } };
  const edges = await Edges.firstPage({ ...query, ConsistentRead: true, Limit: size }, EdgeItem.pick({ dependentDrv: true }));
  return edges.map((e) => e.dependentDrv);
}
