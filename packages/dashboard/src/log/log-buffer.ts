/**
 * The lines of one build log the viewer holds: opened at the tail, grown backwards a page at a
 * time (`before` the first chunk) and forwards while the build runs (`after` the last chunk).
 * Each line keeps an id that never changes, so the viewer keeps its place when older lines are
 * put in front.
 */
import type { LogPage } from "@nimbus/protocol";

export interface LogLine {
  id: number;
  text: string;
}

/** Terminal colour and cursor sequences Nix builders print; shown as plain text. */
const ANSI_SEQUENCE = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]/g;

export function plainText(line: string): string {
  return line.includes("\x1b") ? line.replace(ANSI_SEQUENCE, "") : line;
}

export class LogBuffer {
  lines: LogLine[];
  /** Cursor for the lines before the first one held, when there are any. */
  start: string | undefined;
  /** Cursor for lines after the last one held. */
  end: string | undefined;
  /** Older lines exist that are not held. */
  truncated: boolean;
  building: boolean;
  readonly attempt: number | undefined;
  private firstId: number;

  constructor(tail: LogPage) {
    this.lines = tail.lines.map((text, id) => ({ id, text: plainText(text) }));
    this.firstId = 0;
    this.start = tail.start;
    this.end = tail.end;
    this.truncated = tail.truncated;
    this.building = tail.building ?? false;
    this.attempt = tail.attempt;
  }

  /** Whether older lines can be fetched (the server gave a cursor for them). */
  canLoadOlder(): boolean {
    return this.truncated && this.start !== undefined;
  }

  /** Puts an older page in front; returns how many lines were added. */
  prepend(page: LogPage): number {
    const older = page.lines.map((text, i) => ({ id: this.firstId - page.lines.length + i, text: plainText(text) }));
    this.firstId -= older.length;
    this.lines = older.concat(this.lines);
    this.start = page.start;
    this.truncated = page.truncated;
    return older.length;
  }

  /** Adds what the build printed since; returns how many lines were added. */
  append(page: LogPage): number {
    let next = this.firstId + this.lines.length;
    for (const text of page.lines) this.lines.push({ id: next++, text: plainText(text) });
    if (page.end !== undefined) this.end = page.end;
    this.building = page.building ?? false;
    return page.lines.length;
  }

  /** Indexes of the lines containing `query`, ignoring case. */
  search(query: string): number[] {
    const needle = query.toLowerCase();
    if (needle === "") return [];
    const found: number[] = [];
    for (const [index, line] of this.lines.entries()) if (line.text.toLowerCase().includes(needle)) found.push(index);
    return found;
  }
}
