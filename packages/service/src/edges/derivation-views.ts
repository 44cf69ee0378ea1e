/** `GET /api/jobs/{id}/derivations` and `GET /api/derivations/{drv}/log`. */
import { buildNeeds, canBuild, capabilitiesOf, waitingReason } from "@nimbus/core";
import {
  DerivationStatus,
  DrvPath,
  type AgentView,
  type DerivationLog,
  type DerivationPage,
  type FailureView,
  type JobDerivationView,
} from "@nimbus/protocol";
import { badRequest, notFound } from "../platform/errors.ts";
import { derivationInputsOf } from "../storage/derivation-inputs.ts";
import { getDerivation, getDerivations } from "../storage/derivations.ts";
import type { DerivationItem, JobDerivationItem } from "../storage/items.ts";
import { jobStatusKey, LOG_CHUNKS_PER_ATTEMPT, logAttemptOf } from "../storage/keys.ts";
import { BuildLogs, JobDerivations } from "../storage/tables.ts";
import { listAgents } from "./agent-views.ts";
import { failureView, requireJob } from "./job-views.ts";
import { decodeCursor, queryPage } from "./paging.ts";

/** A log answer keeps the last this many lines… */
export const MAX_LOG_LINES = 10_000;
/** …and at most this much text, well inside Lambda's 6 MB response limit. */
export const MAX_LOG_CHARS = 4 * 1024 * 1024;
const STORE_DIR = "/nix/store/";

export function parseDerivationStatus(raw: string | undefined): DerivationStatus | undefined {
  if (raw === undefined || raw === "") return undefined;
  const parsed = DerivationStatus.safeParse(raw);
  if (!parsed.success) throw badRequest(`status must be one of ${DerivationStatus.options.join(", ")}`);
  return parsed.data;
}

/**
 * One page of a job's derivations: with `status`, from the byJobStatus index (one status of one
 * job, however many others there are); without, in drv path order from the base table.
 */
export async function listJobDerivations(
  jobId: string,
  options: { status?: DerivationStatus; cursor?: string; limit: number },
): Promise<DerivationPage> {
  await requireJob(jobId);
  const { status } = options;
  const page = status
    ? await queryPage(
        JobDerivations,
        {
          IndexName: "byJobStatus",
          KeyConditionExpression: "jobStatus = :key",
          ExpressionAttributeValues: { ":key": jobStatusKey(jobId, status) },
        },
        ["jobId", "drvPath", "jobStatus"],
        options.limit,
        decodeCursor(options.cursor, ["jobId", "drvPath", "jobStatus"], { jobStatus: jobStatusKey(jobId, status) }),
      )
    : await queryPage(
        JobDerivations,
        { KeyConditionExpression: "jobId = :job", ExpressionAttributeValues: { ":job": jobId } },
        ["jobId", "drvPath"],
        options.limit,
        decodeCursor(options.cursor, ["jobId", "drvPath"], { jobId }),
      );

  const derivations = await getDerivations(page.items.map((d) => d.drvPath));
  // Agents, and the inputs of queued derivations, are read once per page, and only when a queued derivation needs them.
  const queued = page.items.filter((d) => d.status === "queued").flatMap((d) => derivations.get(d.drvPath) ?? []);
  const agents = queued.length > 0 ? await listAgents() : [];
  const inputsOf = new Map(await Promise.all(queued.map(async (d) => [d.drvPath, await derivationInputsOf(d.drvPath)] as const)));
  const inputs = await getDerivations([...inputsOf.values()].flat());
  const builtInputs = (drvPath: string) => (inputsOf.get(drvPath) ?? []).flatMap((i) => inputs.get(i) ?? []);
  const views = page.items.flatMap((d) => {
    const drv = derivations.get(d.drvPath);
    if (drv) return [derivationView(d, drv, agents, builtInputs(d.drvPath))];
    console.warn(`job ${jobId} lists ${d.drvPath}, which has no Derivations item`);
    return [];
  });
  return { derivations: views, ...(page.cursor ? { cursor: page.cursor } : {}) };
}

/** Status is the job's mirror (what `?status=` pages by); the rest comes from the shared item. */
function derivationView(
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

/** The latest attempt's log: its last MAX_LOG_LINES lines, read newest chunk first. */
export async function derivationLog(drvPath: string): Promise<DerivationLog> {
  if (!(await getDerivation(drvPath))) throw notFound(`no derivation ${drvPath} — \`nimbus job <id>\` names a job's derivations`);

  const [newest] = await BuildLogs.firstPage({
    KeyConditionExpression: "drvPath = :drv",
    ExpressionAttributeValues: { ":drv": drvPath },
    ScanIndexForward: false,
    Limit: 1,
  });
  if (newest === undefined) return { drvPath, lines: [], truncated: false };
  const attempt = logAttemptOf(newest.chunk);

  const chunks: string[][] = [];
  let lines = 0;
  let chars = 0;
  let more = false;
  const latestAttempt = {
    KeyConditionExpression: "drvPath = :drv AND chunk BETWEEN :first AND :last",
    ExpressionAttributeValues: {
      ":drv": drvPath,
      ":first": attempt * LOG_CHUNKS_PER_ATTEMPT,
      ":last": (attempt + 1) * LOG_CHUNKS_PER_ATTEMPT - 1,
    },
    ScanIndexForward: false,
  };
  pages: for await (const page of BuildLogs.pages(latestAttempt)) {
    for (const [i, item] of page.items.entries()) {
      chunks.push(item.lines);
      lines += item.lines.length;
      chars += item.lines.reduce((n, l) => n + l.length, 0);
      if (lines >= MAX_LOG_LINES || chars >= MAX_LOG_CHARS) {
        more = i < page.items.length - 1 || page.more;
        break pages;
      }
    }
  }

  const all = chunks.reverse().flat();
  const kept = lastLinesWithin(all);
  return { drvPath, lines: kept, truncated: more || kept.length < all.length };
}

/** The longest tail of `lines` within MAX_LOG_LINES lines and MAX_LOG_CHARS characters. */
function lastLinesWithin(lines: string[]): string[] {
  let chars = 0;
  let start = lines.length;
  while (start > 0 && lines.length - start < MAX_LOG_LINES && chars + lines[start - 1]!.length <= MAX_LOG_CHARS) {
    start--;
    chars += lines[start]!.length;
  }
  return lines.slice(start);
}
