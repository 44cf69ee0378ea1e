import { EdgeItem } from "./items.ts";
import { Edges } from "./tables.ts";

/** Records that `dependent` needs each input (idempotent puts). */
export async function putEdges(dependent: string, inputs: readonly string[]): Promise<void> {
  await Edges.batchPut(inputs.map((inputDrv): EdgeItem => ({ inputDrv, dependentDrv: dependent })));
}

/** The derivations that need `drvPath`. */
export async function dependentsOf(drvPath: string): Promise<string[]> {
  const edges = await Edges.query(
    { KeyConditionExpression: "inputDrv = :drv", ExpressionAttributeValues: { ":drv": drvPath } },
    EdgeItem.pick({ dependentDrv: true }),
  );
  return edges.map((e) => e.dependentDrv);
}
