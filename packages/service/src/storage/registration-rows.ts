/**
 * The rows one evaluation batch writes besides its derivation items (flow/register-batch.ts),
 * written together: BatchWriteItem, 25 to a request whatever their table. All of them are
 * idempotent puts, as their one-by-one writers' are (storage/derivation-edges.ts,
 * pending-inputs.ts, derivation-inputs.ts, job-attributes.ts). Edges go as a row per input
 * with the batch's dependents of it (storage/derivation-edges.ts `groupedEdgeRows`).
 */
import { tableName } from "../platform/linked-resources.ts";
import { groupedEdgeRows } from "./derivation-edges.ts";
import { batchPutMany } from "./dynamo-batch.ts";
import type { EdgeItem, JobAttributeItem, PendingInputItem } from "./items.ts";

export interface RegistrationRows {
  edges: EdgeItem[];
  /** Each is both a pending input and a recorded input (PendingInputs and DerivationInputs). */
  inputRows: PendingInputItem[];
  attributes: JobAttributeItem[];
}

export async function putRegistrationRows(rows: RegistrationRows): Promise<void> {
  const unique = <T>(items: readonly T[], key: (item: T) => string) => [...new Map(items.map((item) => [key(item), item])).values()];
  // One request must not name a key twice: the last attribute of a path wins, as it would one put after another.
  const attributes = unique(rows.attributes, (a) => `${a.jobId}\n${a.attribute}`);
  const edges = groupedEdgeRows(rows.edges);
  const inputRows = unique(rows.inputRows, (r) => `${r.drvPath}\n${r.inputDrv}`);
  await batchPutMany([
    ...edges.map((item) => ({ table: tableName("Edges"), item })),
    ...inputRows.flatMap((item) => [
      { table: tableName("PendingInputs"), item },
      { table: tableName("DerivationInputs"), item },
    ]),
    ...attributes.map((item) => ({ table: tableName("JobAttributes"), item })),
  ]);
}
