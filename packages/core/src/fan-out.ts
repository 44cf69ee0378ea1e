/**
 * Fan-out in pages (docs/architecture.md, "Fan-out in pages"): a settle tells its dependents,
 * a cancel goes through its job's derivations, one page per handler invocation; what is left
 * goes on through the FanOut queue, one message per page. These rules decide, from what was
 * read, whether there is a next page and where it starts, whether a continuation still applies,
 * and how its messages are keyed so that SQS drops a copy and runs one target's pages in turn.
 */
import type { DerivationStatus } from "@nimbus/protocol";
import { PROPAGATING } from "./statuses.ts";

/** Items one page holds unless `NIMBUS_FAN_OUT_PAGE` says otherwise. */
export const DEFAULT_FAN_OUT_PAGE = 100;
/** At most: a page's writes must fit well inside one Lambda invocation. */
export const MAX_FAN_OUT_PAGE = 1000;

/** The page size a setting asks for (a whole number from 1 to MAX_FAN_OUT_PAGE); anything else gives the default. */
export function fanOutPageSize(setting: string | undefined): number {
  const n = setting === undefined || setting.trim() === "" ? NaN : Number(setting);
  return Number.isInteger(n) && n >= 1 && n <= MAX_FAN_OUT_PAGE ? n : DEFAULT_FAN_OUT_PAGE;
}

/** What follows a page: nothing, or the next page, which starts after `after` (the page's last key). */
export type PageNext = { type: "done" } | { type: "next"; after: string };

/**
 * A page shorter than the page size was the last; a full one may have more after it (at worst
 * the next page is empty, and ends it).
 */
export function afterPage(keys: readonly string[], pageSize: number): PageNext {
  const last = keys[keys.length - 1];
  return keys.length < pageSize || last === undefined ? { type: "done" } : { type: "next", after: last };
}

/** What a settle continuation needs to know of the derivation as it is now. */
export interface SettledState {
  status: DerivationStatus;
  version?: number;
  /** Present while its dependents and jobs are not all told. */
  propagateShard?: string;
}

/**
 * A settle continuation goes on only while the derivation is still settled as that settle told
 * it (same version: a rebuild settled again is told from its first dependent by its own
 * settle) and its dependents are not all told; a copy of a page that came after the end, or
 * after a rebuild, does nothing.
 */
export function settleContinues(drv: SettledState | undefined, continuation: { version: number }): boolean {
  return drv !== undefined && drv.propagateShard !== undefined && PROPAGATING.includes(drv.status) && (drv.version ?? 0) === continuation.version;
}

/**
 * A page still to do: of a settle (its dependents after `after`; from the first when absent) or
 * of a cancel (the job's derivations after `after`).
 */
export type FanOutTarget = { type: "settle"; drvPath: string; version: number; after?: string } | { type: "cancel"; jobId: string; after?: string };

/**
 * How a continuation is keyed on the FIFO queue: one group per derivation or job, so its pages
 * run one at a time and in order; one deduplication key per page, so a copy of the same page
 * sent again within SQS's window (by a handler that ran twice, or the sweeper) is dropped.
 */
export function fanOutKeys(target: FanOutTarget): { group: string; dedup: string } {
  const group = target.type === "settle" ? `settle\n${target.drvPath}` : `cancel\n${target.jobId}`;
  const dedup = target.type === "settle" ? `${group}\n${target.version}\n${target.after ?? ""}` : `${group}\n${target.after ?? ""}`;
  return { group, dedup };
}
