/**
 * `GET /api/jobs/{id}/attributes?prefix=&errors=only&cursor=&limit=`: a job's attributes in path
 * order, narrowed by a dotted path prefix (a key condition), or only those that did not
 * evaluate (the sparse byJobError index, which never reads the ones that did).
 */
import type { AttributePage } from "@nimbus/protocol";
import { badRequest } from "../platform/errors.ts";
import { JobAttributes } from "../storage/tables.ts";
import { requireJob, toAttributeViews } from "./job-views.ts";
import { decodeCursor, queryPage } from "./paging.ts";

export const MAX_PREFIX_LENGTH = 1000;

export interface AttributeQuery {
  prefix?: string;
  errorsOnly?: boolean;
  cursor?: string;
  limit: number;
}

export function parseAttributeQuery(query: Record<string, string | undefined>, limit: number): AttributeQuery {
  const prefix = query.prefix || undefined;
  if (prefix !== undefined && prefix.length > MAX_PREFIX_LENGTH) throw badRequest(`prefix must be at most ${MAX_PREFIX_LENGTH} characters`);
  const errors = query.errors ?? "";
  if (errors !== "" && errors !== "only") throw badRequest("errors must be `only` (or left out)");
  return { ...(prefix ? { prefix } : {}), ...(errors === "only" ? { errorsOnly: true } : {}), ...(query.cursor ? { cursor: query.cursor } : {}), limit };
}

/**
 * What a stored attribute key (the JSON of its path) starts with for a dotted prefix: every
 * segment but the last whole, the last a prefix of the next segment — the JSON of the segments
 * without its closing `"]`. (A name with a dot in it can only be narrowed to its parent.)
 */
export function attributeKeyPrefix(prefix: string): string {
  return JSON.stringify(prefix.split(".")).slice(0, -2);
}

export async function listJobAttributes(jobId: string, query: AttributeQuery): Promise<AttributePage> {
  await requireJob(jobId);
  const keyPrefix = query.prefix === undefined ? undefined : attributeKeyPrefix(query.prefix);
  const [hashKey, keys] = query.errorsOnly
    ? (["errorJobId", ["jobId", "attribute", "errorJobId"]] as const)
    : (["jobId", ["jobId", "attribute"]] as const);
  const start = decodeCursor(query.cursor, keys, { [hashKey]: jobId });
  if (start && keyPrefix !== undefined && !String(start.attribute).startsWith(keyPrefix)) {
    throw badRequest("cursor is outside the prefix it was given with — send the same prefix again, or drop the cursor");
  }
  const { items, cursor } = await queryPage(
    JobAttributes,
    {
      ...(query.errorsOnly ? { IndexName: "byJobError" as const } : {}),
      KeyConditionExpression: `#hash = :job${keyPrefix === undefined ? "" : " AND begins_with(#attribute, :prefix)"}`,
      ExpressionAttributeNames: { "#hash": hashKey, ...(keyPrefix === undefined ? {} : { "#attribute": "attribute" }) },
      ExpressionAttributeValues: { ":job": jobId, ...(keyPrefix === undefined ? {} : { ":prefix": keyPrefix }) },
    },
    keys,
    query.limit,
    start,
  );
  return { attributes: await toAttributeViews(items), ...(cursor ? { cursor } : {}) };
}
