import { EdgeItem } from "./items.ts";
import { Edges } from "./tables.ts";

/** Records that `dependent` needs each input (idempotent puts). */
export async function putEdges(dependent: string, inputs: readonly string[]): Promise<void> {
  await Edges.batchPut(inputs.map((inputDrv): EdgeItem => ({ inputDrv, dependentDrv: dependent })));
}

/**
 * The derivations that need `drvPath`, read consistently: an edge put just before its
 * dependent looked at this input must be seen here (flow/register-derivation.ts).
 */
export async function dependentsOf(drvPath: string): Promise<string[]> {
  const edges = await Edges.query(
    { KeyConditionExpression: "inputDrv = :drv", ExpressionAttributeValues: { ":drv": drvPath }, ConsistentRead: true },
    EdgeItem.pick({ dependentDrv: true }),
  );
  return edges.map((e) => e.dependentDrv);
}
