import { edgePage, groupDependents, groupKey, parseEdgePosition, type PageNext } from "@nimbus/core";
import { hexDigest } from "../platform/hex-digest.ts";
import { EdgeItem, type EdgePlacement } from "./items.ts";
import { Edges } from "./tables.ts";

/** Records that `dependent` needs each input (idempotent puts, a row per edge). */
export async function putEdges(dependent: string, inputs: readonly string[]): Promise<void> {
  await Edges.batchPut(inputs.map((inputDrv): EdgeItem => ({ inputDrv, dependentDrv: dependent })));
}

/**
 * The rows of a batch's edges, a row per input with its dependents (core `groupDependents`,
 * bounded): what flow/register-batch.ts writes instead of a row per edge. Idempotent puts: the
 * same group is the same row (core `groupKey`).
 */
export function groupedEdgeRows(edges: readonly Pick<EdgeItem, "inputDrv" | "dependentDrv" | "sole">[]): EdgeItem[] {
  const soles = new Map(edges.flatMap((edge) => (edge.sole ? [[`${edge.inputDrv}\n${edge.dependentDrv}`, edge.sole] as const] : [])));
  return groupDependents(edges).map(({ inputDrv, dependents }) => {
    if (dependents.length > 1) return { inputDrv, dependentDrv: groupKey(dependents, (text) => hexDigest(text, 24)), dependents };
    // A row of one dependent keeps its placement, when it has one input (a chain's link).
    const sole = soles.get(`${inputDrv}\n${dependents[0]!}`);
    return { inputDrv, dependentDrv: dependents[0]!, ...(sole ? { sole } : {}) };
  });
}

/**
 * Up to `size` of the derivations that need `drvPath`, in row order, from `after` on (a
 * settle's page: docs/architecture.md, "Fan-out in pages"; `after` may stop inside a row of
 * many, core `edgePage`), and where the next page starts; read consistently: an edge put just
 * before its dependent looked at this input must be seen here (flow/register-derivation.ts).
 */
export async function dependentPage(
  drvPath: string,
  after: string | undefined,
  size: number,
): Promise<{ dependents: string[]; next: PageNext; soles: Map<string, EdgePlacement> }> {
  const start = parseEdgePosition(after);
  // Inside a row: that row again (its first `told` are skipped); else the rows after it.
  const query = start
    ? {
        KeyConditionExpression: `inputDrv = :drv AND dependentDrv ${start.told === undefined ? ">" : ">="} :after`,
        ExpressionAttributeValues: { ":drv": drvPath, ":after": start.key },
      }
    : { KeyConditionExpression: "inputDrv = :drv", ExpressionAttributeValues: { ":drv": drvPath } };
  // Every row holds at least one dependent: `size` rows fill a page.
  for await (const { items, more } of Edges.pages({ ...query, ConsistentRead: true }, EdgeItem.pick({ dependentDrv: true, dependents: true, sole: true }), { pageSize: size })) {
    const soles = new Map(items.flatMap((item) => (item.sole && !item.dependents ? [[item.dependentDrv, item.sole] as const] : [])));
    return { ...edgePage(items, start, size, more), soles };
  }
  return { dependents: [], next: { type: "done" }, soles: new Map() };
}
