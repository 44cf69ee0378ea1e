/** `GET /api/jobs/{id}/derivations`, and the `{drv}` of `/api/derivations/{drv}…`. */
import { buildNeeds, canBuild, capabilitiesOf, shownStatus, waitingReason } from "@nimbus/core";
import {
  DerivationStatus,
  DrvPath,
  HashPrefix,
  type AgentView,
  type DerivationPage,
  type FailureView,
  type JobDerivationView,
} from "@nimbus/protocol";
import { badRequest } from "../platform/errors.ts";
import { derivationInputsOf } from "../storage/derivation-inputs.ts";
import { getDerivations } from "../storage/derivations.ts";
import type { DerivationItem, JobDerivationItem } from "../storage/items.ts";
import { jobRowsUnderWay } from "../storage/job-derivations.ts";
import { jobStatusKey } from "../storage/keys.ts";
import { JobDerivations } from "../storage/tables.ts";
import { listAgents } from "./agent-views.ts";
import { failureView, requireJob } from "./job-views.ts";
import { decodeCursor, encodeCursor, queryPage } from "./paging.ts";

const STORE_DIR = "/nix/store/";

export function parseDerivationStatus(raw: string | undefined): DerivationStatus | undefined {
  if (raw === undefined || raw === "") return undefined;
  const parsed = DerivationStatus.safeParse(raw);
  if (!parsed.success) throw badRequest(`status must be one of ${DerivationStatus.options.join(", ")}`);
  return parsed.data;
}

/** `from` or `to` of the query: a store hash prefix, or absent. */
export function parseHashPrefix(name: "from" | "to", raw: string | undefined): string | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (!HashPrefix.safeParse(raw).success) throw badRequest(`${name} must be 1–32 characters of a Nix store hash (0-9 and a-z but e, o, t, u)`);
  return raw;
}

/**
 * `drvPath` within the hash range [from, to): a key condition, since both the table and
 * byJobStatus sort by it. No store path equals a bare prefix, and every path whose hash starts
 * with `to` sorts after `/nix/store/<to>`, so the bounds are exact (docs/dashboard-api.md).
 */
function rangeCondition(range: { from?: string; to?: string }): { expression: string; values: Record<string, string> } {
  const from = range.from === undefined ? undefined : `${STORE_DIR}${range.from}`;
  const to = range.to === undefined ? undefined : `${STORE_DIR}${range.to}`;
  if (from !== undefined && to !== undefined) return { expression: " AND drvPath BETWEEN :from AND :to", values: { ":from": from, ":to": to } };
  if (from !== undefined) return { expression: " AND drvPath >= :from", values: { ":from": from } };
  if (to !== undefined) return { expression: " AND drvPath < :to", values: { ":to": to } };
  return { expression: "", values: {} };
}

/**
 * One page of a job's derivations: with `status`, from the byJobStatus index (one status of one
 * job, however many others there are) — `building` from the builds under way, whose rows say
 * `queued` or `waiting` (a build's start is no move of its rows), and those are left out of
 * those statuses' pages; without, in drv path order from the base table. `from` and `to` narrow
 * it to a range of store hashes (any part of a long list in one request).
 */
export async function listJobDerivations(
  jobId: string,
  options: { status?: DerivationStatus; from?: string; to?: string; cursor?: string; limit: number },
): Promise<DerivationPage> {
  await requireJob(jobId);
  const { status } = options;
  if (options.from !== undefined && options.to !== undefined && options.from >= options.to) {
    throw badRequest("from must sort before to (the range is [from, to))");
  }
  const range = rangeCondition(options);
  const start = status
    ? decodeCursor(options.cursor, ["jobId", "drvPath", "jobStatus"], { jobStatus: jobStatusKey(jobId, status) })
    : decodeCursor(options.cursor, ["jobId", "drvPath"], { jobId });
  const cursorPath = start?.drvPath as string | undefined;
  if (cursorPath !== undefined && !inHashRange(cursorPath, options)) {
    throw badRequest("cursor is outside the from/to range it was given with — send the same from and to again, or drop the cursor");
  }
  const page = status === "building" ? underWayPage(await jobRowsUnderWay(jobId), jobId, options, cursorPath) : await indexPage(jobId, status, range, options.limit, start);

  const derivations = await getDerivations(page.items.map((d) => d.drvPath));
  // A row whose derivation is being built shows `building`, on that status's page alone.
  const rows = page.items.flatMap((d) => {
    const shown = shownStatus(d.status, derivations.get(d.drvPath)?.status);
    return status === undefined || shown === status ? [{ ...d, status: shown }] : [];
  });
  // Agents, and the inputs of queued derivations, are read once per page, and only when a queued derivation needs them.
  const queued = rows.filter((d) => d.status === "queued").flatMap((d) => derivations.get(d.drvPath) ?? []);
  const agents = queued.length > 0 ? await listAgents() : [];
  const inputsOf = new Map(await Promise.all(queued.map(async (d) => [d.drvPath, await derivationInputsOf(d.drvPath, d)] as const)));
  const inputs = await getDerivations([...inputsOf.values()].flat());
  const builtInputs = (drvPath: string) => (inputsOf.get(drvPath) ?? []).flatMap((i) => inputs.get(i) ?? []);
  const views = rows.flatMap((d) => {
    const drv = derivations.get(d.drvPath);
    if (drv) return [derivationView(d, drv, agents, builtInputs(d.drvPath))];
    console.warn(`job ${jobId} lists ${d.drvPath}, which has no Derivations item`);
    return [];
  });
  return { derivations: views, ...(page.cursor ? { cursor: page.cursor } : {}) };
}

/** A page of a job's rows: of one status from byJobStatus, or of all from the table. */
function indexPage(jobId: string, status: DerivationStatus | undefined, range: ReturnType<typeof rangeCondition>, limit: number, start: Record<string, string | number> | undefined) {
  return status
    ? queryPage(
        JobDerivations,
        {
          IndexName: "byJobStatus",
          KeyConditionExpression: `jobStatus = :key${range.expression}`,
          ExpressionAttributeValues: { ":key": jobStatusKey(jobId, status), ...range.values },
        },
        ["jobId", "drvPath", "jobStatus"],
        limit,
        start,
      )
    : queryPage(
        JobDerivations,
        { KeyConditionExpression: `jobId = :job${range.expression}`, ExpressionAttributeValues: { ":job": jobId, ...range.values } },
        ["jobId", "drvPath"],
        limit,
        start,
      );
}

/** A page of the job's rows of its builds under way (few: as many as slots build), after the cursor's path. */
function underWayPage(rows: JobDerivationItem[], jobId: string, options: { from?: string; to?: string; limit: number }, after: string | undefined) {
  const inRange = rows.filter((row) => inHashRange(row.drvPath, options) && (after === undefined || row.drvPath > after));
  const items = inRange.slice(0, options.limit);
  const last = items.at(-1);
  const more = inRange.length > options.limit && last !== undefined;
  return { items, ...(more ? { cursor: encodeCursor({ jobId, drvPath: last.drvPath, jobStatus: jobStatusKey(jobId, "building") }) } : {}) };
}

function inHashRange(drvPath: string, range: { from?: string; to?: string }): boolean {
  const hash = drvPath.slice(STORE_DIR.length);
  return (range.from === undefined || hash >= range.from) && (range.to === undefined || hash < range.to);
}

/** Status is the job's mirror as it shows (what `?status=` pages by); the rest comes from the shared item. */
export function derivationView(
  entry: JobDerivationItem,
  drv: DerivationItem,
  agents: AgentView[],
  /** Its inputs Nimbus built (read only for a queued derivation). */
  inputs: readonly DerivationItem[],
): JobDerivationView {
  const status = entry.status;
  const failed = status === "failed" || status === "dependency-failed";
  const unbuildable =
    status === "queued" &&
    !agents.some((a) => canBuild(capabilitiesOf(a), drv));
  // Agents could build it, but none can obtain its inputs (core obtaining.ts): say why.
  const blocked =
    status === "queued" && !unbuildable
      ? waitingReason(
          { system: drv.system, requiredFeatures: drv.requiredFeatures, needs: buildNeeds(drv.needs, inputs) },
          agents,
        )
      : undefined;
  return {
    drvPath: drv.drvPath,
    status,
    system: drv.system,
    requiredFeatures: drv.requiredFeatures,
    outputs: drv.outputs,
    ...(drv.builtBy ? { builtBy: { ...drv.builtBy, labels: drv.builtBy.labels as Record<string, never> } } : {}),
    ...(failed ? { failure: failureView(drv.drvPath, status as FailureView["status"], drv) } : {}),
    ...(unbuildable ? { waitingForAgent: { system: drv.system, features: drv.requiredFeatures } } : {}),
    ...(blocked ? { waitingForInputs: { reason: blocked } } : {}),
    ...(drv.sources?.size ? { sources: [...drv.sources].sort() } : {}),
    ...(drv.cacheProblems?.length ? { cacheProblems: drv.cacheProblems } : {}),
  };
}

/** `{drv}` is a full store path (URL-encoded) or a basename such as `<hash>-hello.drv` in /nix/store. */
export function parseDrvParameter(raw: string | undefined): string {
  let value = raw ?? "";
  try {
    // Decoded already by API Gateway; decoding again only matters if it arrived double-encoded.
    if (/%2F/i.test(value)) value = decodeURIComponent(value);
  } catch {
    // Not URL-encoded after all: validated as is below.
  }
  const drvPath = value.startsWith("/") ? value : `${STORE_DIR}${value}`;
  if (!DrvPath.safeParse(drvPath).success || (!value.startsWith("/") && value.includes("/"))) {
    throw badRequest("derivation must be a .drv store path (URL-encoded) or its basename, e.g. abc…-hello.drv");
  }
  return drvPath;
}
