/**
 * `GET /api/derivations/{drv}/log?attempt=&before=&after=&limit=`: a window of one attempt's log
 * in whole chunks (docs/dashboard-api.md). Without parameters it is exactly the answer of the
 * release before cursors: the last 10,000 lines of the latest attempt, as `nimbus logs` prints it; `before` pages backwards from a window's `start`,
 * `after` reads what was appended since a window's `end` (a viewer following a build).
 * Attempts are numbered from 1 here; the stored chunk numbers count them from 0 (storage/keys.ts).
 */
import type { LogPage } from "@nimbus/protocol";
import { badRequest, notFound } from "../platform/errors.ts";
import { getDerivation } from "../storage/derivations.ts";
import type { BuildLogItem, DerivationItem } from "../storage/items.ts";
import { LOG_CHUNKS_PER_ATTEMPT, logAttemptOf } from "../storage/keys.ts";
import { BuildLogs } from "../storage/tables.ts";

/** A log answer keeps at most this many lines… */
export const MAX_LOG_LINES = 10_000;
/** …and at most this much text, well inside Lambda's 6 MB response limit. */
export const MAX_LOG_CHARS = 4 * 1024 * 1024;

export interface LogQuery {
  /** From 1; default the latest attempt with a log. */
  attempt?: number;
  before?: number;
  after?: number;
  limit?: number;
}

const whole = (name: string, raw: string | undefined, max: number): number | undefined => {
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!/^\d{1,16}$/.test(raw) || value > max) throw badRequest(`${name} must be a whole number up to ${max.toLocaleString("en")}`);
  return value;
};

/** The query string, checked: each value's range, and cursors only with the attempt they belong to. */
export function parseLogQuery(query: Record<string, string | undefined>): LogQuery {
  const attempt = whole("attempt", query.attempt, LOG_CHUNKS_PER_ATTEMPT);
  if (attempt === 0) throw badRequest("attempt counts from 1");
  const limit = whole("limit", query.limit, MAX_LOG_LINES);
  if (limit === 0) throw badRequest(`limit must be from 1 to ${MAX_LOG_LINES}`);
  const before = whole("before", query.before, Number.MAX_SAFE_INTEGER);
  const after = whole("after", query.after, Number.MAX_SAFE_INTEGER);
  if (before !== undefined && after !== undefined) throw badRequest("before and after cannot be used together");
  if ((before !== undefined || after !== undefined) && attempt === undefined) {
    throw badRequest("before and after need the attempt of the answer their cursor came from");
  }
  if (attempt !== undefined) {
    const first = (attempt - 1) * LOG_CHUNKS_PER_ATTEMPT;
    const last = first + LOG_CHUNKS_PER_ATTEMPT - 1;
    // `after` may be the position before the first chunk (an answer that had no lines yet).
    if (after !== undefined && (after < first - 1 || after > last)) throw badRequest(`after is not a cursor of attempt ${attempt}`);
    if (before !== undefined && (before < first || before > last + 1)) throw badRequest(`before is not a cursor of attempt ${attempt}`);
  }
  return {
    ...(attempt !== undefined ? { attempt } : {}),
    ...(before !== undefined ? { before } : {}),
    ...(after !== undefined ? { after } : {}),
    ...(limit !== undefined ? { limit } : {}),
  };
}

export async function logPage(drvPath: string, query: LogQuery = {}): Promise<LogPage> {
  const drv = await getDerivation(drvPath);
  if (!drv) throw notFound(`no derivation ${drvPath} — \`nimbus job <id>\` names a job's derivations`);
  const stored = query.attempt !== undefined ? query.attempt - 1 : await latestLoggedAttempt(drvPath, drv);
  const first = stored * LOG_CHUNKS_PER_ATTEMPT;
  const last = first + LOG_CHUNKS_PER_ATTEMPT - 1;
  const limit = query.limit ?? MAX_LOG_LINES;
  const building = drv.status === "building" && drv.attempt === stored;
  const base = { drvPath, attempt: stored + 1, ...(building ? { building } : {}) };

  if (query.after !== undefined) {
    const { chunks } = await readChunks(drvPath, query.after + 1, last, true, limit);
    const lines = chunks.flatMap((c) => c.lines);
    const end = chunks.at(-1)?.chunk ?? query.after;
    return { ...base, lines, truncated: false, ...(chunks[0] ? { start: String(chunks[0].chunk) } : {}), end: String(end) };
  }

  const { chunks, more } = await readChunks(drvPath, first, (query.before ?? last + 1) - 1, false, limit);
  chunks.reverse();
  const all = chunks.flatMap((c) => c.lines);
  // Without parameters: exactly the last 10,000 lines, as before cursors existed (`nimbus logs`).
  const plain = query.attempt === undefined && query.before === undefined && query.limit === undefined;
  const lines = plain ? lastLinesWithin(all) : all;
  const cut = lines.length < all.length;
  // Exactly today's answer: clients of the older release check it strictly.
  if (plain) return { drvPath, lines, truncated: more || cut };
  return {
    ...base,
    lines,
    truncated: more || cut,
    ...(chunks[0] ? { start: String(chunks[0].chunk) } : {}),
    // Nothing yet: `after` the position before the attempt's first chunk reads it from the start.
    end: String(chunks.at(-1)?.chunk ?? query.before ?? first - 1),
  };
}

/** The latest attempt with a log (one item read), or the current attempt when none has one yet. */
async function latestLoggedAttempt(drvPath: string, drv: DerivationItem): Promise<number> {
  return (await newestLoggedAttempt(drvPath)) ?? drv.attempt;
}

async function newestLoggedAttempt(key: string): Promise<number | undefined> {
  const [newest] = await BuildLogs.firstPage({
    KeyConditionExpression: "drvPath = :drv",
    ExpressionAttributeValues: { ":drv": key },
    ScanIndexForward: false,
    Limit: 1,
  });
  return newest === undefined ? undefined : logAttemptOf(newest.chunk);
}

/**
 * The last lines of the latest attempt of a log kept under `key` without a derivation item (an
 * effect's, docs/effects.md), as a plain `logPage` answers.
 */
export async function latestLog(key: string): Promise<{ lines: string[]; truncated: boolean }> {
  const attempt = await newestLoggedAttempt(key);
  if (attempt === undefined) return { lines: [], truncated: false };
  const first = attempt * LOG_CHUNKS_PER_ATTEMPT;
  const { chunks, more } = await readChunks(key, first, first + LOG_CHUNKS_PER_ATTEMPT - 1, false, MAX_LOG_LINES);
  const all = chunks.reverse().flatMap((c) => c.lines);
  const lines = lastLinesWithin(all);
  return { lines, truncated: more || lines.length < all.length };
}

/**
 * Chunks numbered `low`–`high`, from `high` down (or `low` up with `forward`), until `limit`
 * lines or MAX_LOG_CHARS; `more` when chunks were left in the range.
 */
async function readChunks(
  drvPath: string,
  low: number,
  high: number,
  forward: boolean,
  limit: number,
): Promise<{ chunks: BuildLogItem[]; more: boolean }> {
  const chunks: BuildLogItem[] = [];
  if (high < low) return { chunks, more: false };
  let lines = 0;
  let chars = 0;
  const range = {
    KeyConditionExpression: "drvPath = :drv AND chunk BETWEEN :low AND :high",
    ExpressionAttributeValues: { ":drv": drvPath, ":low": low, ":high": high },
    ScanIndexForward: forward,
  };
  // Chunks are ≤ 32 KB: a page of 16 is enough for 2,000 lines of most logs.
  for await (const page of BuildLogs.pages(range, BuildLogs.schema, { pageSize: 16 })) {
    for (const [i, item] of page.items.entries()) {
      chunks.push(item);
      lines += item.lines.length;
      chars += item.lines.reduce((n, l) => n + l.length, 0);
      if (lines >= limit || chars >= MAX_LOG_CHARS) return { chunks, more: i < page.items.length - 1 || page.more };
    }
  }
  return { chunks, more: false };
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
