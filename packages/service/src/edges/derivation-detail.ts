/**
 * `GET /api/derivations/{drv}`: one derivation — its item, its status history and build
 * attempts (core `statusHistory`, `buildAttempts`) and the jobs that need it, newest first.
 * Reads: the item, one Query of byDrv, its DerivationInputs rows, and the agents and its inputs'
 * items only while it is queued.
 */
import { buildAttempts, statusHistory } from "@nimbus/core";
import type { DerivationDetail } from "@nimbus/protocol";
import { notFound } from "../platform/errors.ts";
import { derivationInputsOf } from "../storage/derivation-inputs.ts";
import { getDerivation, getDerivations } from "../storage/derivations.ts";
import { JobDerivationItem } from "../storage/items.ts";
import { JobDerivations } from "../storage/tables.ts";
import { listAgents } from "./agent-views.ts";
import { derivationView } from "./derivation-views.ts";

/** The detail lists at most this many jobs. */
export const MAX_DETAIL_JOBS = 20;

export async function derivationDetail(drvPath: string): Promise<DerivationDetail> {
  const [drv, rows, inputDrvs] = await Promise.all([
    getDerivation(drvPath),
    // Job ids sort by creation time: the newest first.
    JobDerivations.firstPage(
      {
        IndexName: "byDrv",
        KeyConditionExpression: "drvPath = :drv",
        ExpressionAttributeValues: { ":drv": drvPath },
        ScanIndexForward: false,
        Limit: MAX_DETAIL_JOBS,
        ProjectionExpression: "jobId",
      },
      JobDerivationItem.pick({ jobId: true }),
    ),
    derivationInputsOf(drvPath),
  ]);
  if (!drv) throw notFound(`no derivation ${drvPath} — \`nimbus job <id>\` names a job's derivations`);
  const queued = drv.status === "queued";
  // Whether an agent can build it, and obtain its inputs, matters only while it waits for one.
  const [agents, inputs] = queued ? await Promise.all([listAgents(), getDerivations(inputDrvs)]) : [[], new Map<string, never>()];
  const view = derivationView({ jobId: "", drvPath, status: drv.status, jobStatus: "" }, drv, agents, [...inputs.values()]);
  // Stored attempts count from 0 (the first build); the API counts from 1.
  const attempt = drv.attempt + 1;
  const moves = drv.history ?? [];
  return {
    ...view,
    createdAt: drv.createdAt,
    updatedAt: drv.updatedAt,
    ...(drv.queuedAt ? { queuedAt: drv.queuedAt } : {}),
    ...(drv.finishedAt ? { finishedAt: drv.finishedAt } : {}),
    attempt,
    inputDrvs: [...inputDrvs].sort(),
    history: statusHistory(moves, attempt),
    attempts: buildAttempts(moves, attempt),
    jobs: rows.map((r) => r.jobId),
  };
}
