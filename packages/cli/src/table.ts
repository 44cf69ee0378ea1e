import { printable } from "@nimbus/agent/terminal-text";

/**
 * Left-aligned columns for listing commands (their `--json` form is the API's JSON). Cells come
 * from agents and repositories: printed without control characters.
 */
export function formatTable(header: string[], cells: string[][]): string {
  const rows = cells.map((row) => row.map(printable));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}
