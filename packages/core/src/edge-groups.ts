/**
 * Edges in groups (docs/architecture.md, "Fan-out in pages"): an evaluation batch writes one
 * Edges row per input with the batch's dependents of it (sorted, at most EDGE_GROUP_DEPENDENTS
 * of them and EDGE_GROUP_BYTES of paths a row), instead of one row per edge; a single edge
 * stays a row of its own, keyed by the dependent. A settle pages through an input's rows in key
 * order, a fixed number of dependents a page, and may stop inside a row: these rules group the
 * edges and cut the pages.
 */
import type { PageNext } from "./fan-out.ts";

/** At most this many dependents, of at most this many bytes of paths in all, share a row: far below DynamoDB's 400 KB. */
export const EDGE_GROUP_DEPENDENTS = 100;
export const EDGE_GROUP_BYTES = 16_000;

const utf8 = new TextEncoder();

/** One Edges row as read: its sort key, and its dependents when it holds a group (else the key is the dependent). */
export interface EdgeRowRead {
  dependentDrv: string;
  dependents?: readonly string[];
}

/**
 * The dependents of each input in groups of a row each: sorted, unique, within the bounds
 * above (a dependent longer than EDGE_GROUP_BYTES alone is a group of one).
 */
export function groupDependents(edges: readonly { inputDrv: string; dependentDrv: string }[]): { inputDrv: string; dependents: string[] }[] {
  const byInput = new Map<string, Set<string>>();
  for (const { inputDrv, dependentDrv } of edges) {
    let dependents = byInput.get(inputDrv);
    if (!dependents) byInput.set(inputDrv, (dependents = new Set()));
    dependents.add(dependentDrv);
  }
  const groups: { inputDrv: string; dependents: string[] }[] = [];
  for (const [inputDrv, set] of byInput) {
    let group: string[] = [];
    let bytes = 0;
    for (const dependent of [...set].sort()) {
      const size = utf8.encode(dependent).length;
      if (group.length > 0 && (group.length >= EDGE_GROUP_DEPENDENTS || bytes + size > EDGE_GROUP_BYTES)) {
        groups.push({ inputDrv, dependents: group });
        group = [];
        bytes = 0;
      }
      group.push(dependent);
      bytes += size;
    }
    groups.push({ inputDrv, dependents: group });
  }
  return groups;
}

/**
 * The sort key of a group's row: its first dependent, a space (never in a .drv path, so no
 * single edge's key), and a digest of all of them — the same group written twice is one row,
 * two groups are two rows, whatever other batches wrote.
 */
export const groupKey = (dependents: readonly string[], digest: (text: string) => string): string =>
  dependents.length === 1 ? dependents[0]! : `${dependents[0]} ${digest(dependents.join("\n"))}`;

/**
 * Where a settle's page of an input's dependents starts (`propagatedThrough`): after the row
 * with this key, or, with `told`, after the first `told` dependents of it (a page that stopped
 * inside a row). A position is the row key, with a tab and the count when it is inside the row.
 */
export interface EdgePosition {
  key: string;
  told?: number;
}

export function parseEdgePosition(after: string | undefined): EdgePosition | undefined {
  if (after === undefined) return undefined;
  const tab = after.lastIndexOf("\t");
  const told = tab < 0 ? NaN : Number(after.slice(tab + 1));
  return Number.isInteger(told) && told > 0 ? { key: after.slice(0, tab), told } : { key: after };
}

const positionText = (position: EdgePosition): string => (position.told === undefined ? position.key : `${position.key}\t${position.told}`);

/**
 * One page of at most `size` dependents from `rows` (a query's rows in key order, from
 * `start`'s row on when it stopped inside one, else after it), and where the next one starts.
 * `more`: the query left rows out (its Limit or 1 MB). A page that ends the rows, with none
 * left out, is the last.
 */
export function edgePage(rows: readonly EdgeRowRead[], start: EdgePosition | undefined, size: number, more: boolean): { dependents: string[]; next: PageNext } {
  const dependents: string[] = [];
  for (const [i, row] of rows.entries()) {
    const all = row.dependents ?? [row.dependentDrv];
    let from = start?.told !== undefined && row.dependentDrv === start.key ? start.told : 0;
    while (from < all.length && dependents.length < size) dependents.push(all[from++]!);
    if (from < all.length) return { dependents, next: { type: "next", after: positionText({ key: row.dependentDrv, told: from }) } };
    if (dependents.length >= size && (i < rows.length - 1 || more)) return { dependents, next: { type: "next", after: row.dependentDrv } };
  }
  const last = rows[rows.length - 1];
  return { dependents, next: more && last ? { type: "next", after: last.dependentDrv } : { type: "done" } };
}
