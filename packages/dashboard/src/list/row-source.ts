/**
 * Where a virtual list gets its rows. The list asks for the rows it shows (`want`) and renders
 * whatever is loaded, placeholders for the rest; a source loads pages from the API and tells the
 * list when rows arrive. No DOM here: these are tested with plain functions as the API.
 */
import { bucketOf, bucketRange, inRange, type HashRange } from "./hash-ranges.ts";

export interface Page<T> {
  items: T[];
  cursor?: string;
}

export interface RowSource<T> {
  /** Rows the list spans: known, estimated, or loaded so far plus one "loading" row. */
  count(): number;
  /** The row at `index`, if loaded. */
  row(index: number): T | undefined;
  /** A stable identity for a loaded row, so the list keeps the same row in view when rows above it change. */
  keyAt(index: number): string | undefined;
  indexOfKey(key: string): number | undefined;
  /** The list shows rows [start, end): load them if they are not. */
  want(start: number, end: number): void;
  /** The last load's failure, if it failed; `retry` tries again. */
  error(): string | undefined;
  retry(): void;
  /** Calls `listener` whenever rows arrive; returns the unsubscribe. */
  subscribe(listener: () => void): () => void;
  /** Stops loading (the list is gone or shows something else). */
  dispose(): void;
}

/** At most this many requests at once: enough to fill a screen, few enough to keep the API cheap. */
const MAX_IN_FLIGHT = 3;

abstract class Notifier {
  private readonly listeners = new Set<() => void>();
  protected readonly controller = new AbortController();
  protected failure: string | undefined;

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  protected notify(): void {
    for (const listener of this.listeners) listener();
  }
  error(): string | undefined {
    return this.failure;
  }
  dispose(): void {
    this.controller.abort();
    this.listeners.clear();
  }
  protected describe(error: unknown): string | undefined {
    if (this.controller.signal.aborted) return undefined;
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Pages read one after another with a cursor (jobs, attributes): the count grows as the list is
 * scrolled to its end.
 */
export class CursorSource<T> extends Notifier implements RowSource<T> {
  private items: T[] = [];
  private cursor: string | undefined;
  private done = false;
  private loading = false;

  constructor(
    private readonly fetchPage: (cursor: string | undefined, signal: AbortSignal) => Promise<Page<T>>,
    private readonly keyOf: (item: T) => string,
    /** Load the next page when the list shows a row this close to the end of what is loaded. */
    private readonly margin = 50,
  ) {
    super();
  }

  count(): number {
    return this.items.length + (this.done ? 0 : 1);
  }
  row(index: number): T | undefined {
    return this.items[index];
  }
  keyAt(index: number): string | undefined {
    const item = this.items[index];
    return item === undefined ? undefined : this.keyOf(item);
  }
  indexOfKey(key: string): number | undefined {
    const index = this.items.findIndex((item) => this.keyOf(item) === key);
    return index < 0 ? undefined : index;
  }
  /** Whether every page has been read. */
  complete(): boolean {
    return this.done;
  }
  want(_start: number, end: number): void {
    if (this.done || this.loading || this.failure !== undefined) return;
    if (end + this.margin < this.items.length) return;
    void this.load();
  }
  retry(): void {
    this.failure = undefined;
    void this.load();
  }

  private async load(): Promise<void> {
    this.loading = true;
    try {
      const page = await this.fetchPage(this.cursor, this.controller.signal);
      this.items = this.items.concat(page.items);
      this.cursor = page.cursor;
      this.done = page.cursor === undefined;
    } catch (error) {
      this.failure = this.describe(error);
    } finally {
      this.loading = false;
    }
    if (!this.controller.signal.aborted) this.notify();
  }
}

interface Bucket<T> {
  range: HashRange;
  items: T[];
  /** Set while the bucket has more rows than one page held. */
  cursor?: string;
  state: "empty" | "loading" | "partial" | "done";
}

/**
 * A list of known size sorted by store hash (a job's derivations, one status or all), split into
 * buckets of about `bucketSize` rows by hash range. Unloaded buckets are assumed to share the
 * rows not yet seen evenly; a loaded bucket's true size moves the rows after it by a few.
 */
export class HashRangeSource<T> extends Notifier implements RowSource<T> {
  private buckets: Bucket<T>[];
  /** offsets[b] is the index of bucket b's first row; offsets[n] the count. Rebuilt on change. */
  private offsets: number[] = [];
  private wanted: number[] = [];
  /** The rows the list last asked for: loads go on until they are all there. */
  private view = { start: 0, end: 0 };
  private inFlight = 0;

  constructor(
    private readonly total: number,
    private readonly fetchRange: (range: HashRange, cursor: string | undefined, signal: AbortSignal) => Promise<Page<T>>,
    private readonly hashOf: (item: T) => string,
    bucketSize = 100,
  ) {
    super();
    const count = Math.max(1, Math.ceil(total / bucketSize));
    this.buckets = Array.from({ length: count }, (_, index) => ({ range: bucketRange(index, count), items: [], state: "empty" }));
    this.layout();
  }

  count(): number {
    return this.offsets[this.buckets.length]!;
  }

  row(index: number): T | undefined {
    const b = this.bucketAt(index);
    return b === undefined ? undefined : this.buckets[b]!.items[index - this.offsets[b]!];
  }

  keyAt(index: number): string | undefined {
    const item = this.row(index);
    return item === undefined ? undefined : this.hashOf(item);
  }

  indexOfKey(key: string): number | undefined {
    const b = bucketOf(key, this.buckets.length);
    const at = this.buckets[b]!.items.findIndex((item) => this.hashOf(item) === key);
    return at < 0 ? undefined : this.offsets[b]! + at;
  }

  want(start: number, end: number): void {
    this.view = { start, end };
    const first = this.bucketAt(Math.max(0, start));
    const last = this.bucketAt(Math.min(this.count() - 1, Math.max(start, end - 1)));
    if (first === undefined || last === undefined) return;
    const wanted: number[] = [];
    for (let b = first; b <= last; b++) {
      const bucket = this.buckets[b]!;
      const loadedEnd = this.offsets[b]! + bucket.items.length;
      if (bucket.state === "empty" || (bucket.state === "partial" && loadedEnd < end)) wanted.push(b);
    }
    // Only what is on screen now: a fast scroll past a bucket never loads it.
    this.wanted = wanted;
    this.pump();
  }

  retry(): void {
    this.failure = undefined;
    this.pump();
  }

  /** Rows counted as loaded so far (for tests and the bench). */
  loadedRows(): number {
    return this.buckets.reduce((sum, bucket) => sum + bucket.items.length, 0);
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.wanted.length > 0 && this.failure === undefined) {
      const b = this.wanted.shift()!;
      const bucket = this.buckets[b];
      if (!bucket || bucket.state === "loading" || bucket.state === "done") continue;
      void this.load(bucket);
    }
  }

  private async load(bucket: Bucket<T>): Promise<void> {
    const previous = bucket.state;
    bucket.state = "loading";
    this.inFlight++;
    try {
      const page = await this.fetchRange(bucket.range, bucket.cursor, this.controller.signal);
      if (!this.buckets.includes(bucket)) return; // the source went sequential meanwhile
      if (page.items.some((item) => !inRange(this.hashOf(item), bucket.range))) {
        // An API older than hash ranges answered from the start of the list: read it in order instead.
        this.buckets = [{ range: {}, items: page.items, cursor: page.cursor, state: page.cursor === undefined ? "done" : "partial" }];
        this.wanted = [];
      } else {
        bucket.items = bucket.items.concat(page.items);
        bucket.cursor = page.cursor;
        bucket.state = page.cursor === undefined ? "done" : "partial";
      }
    } catch (error) {
      bucket.state = previous === "partial" ? "partial" : "empty";
      this.failure = this.describe(error);
    } finally {
      this.inFlight--;
    }
    if (this.controller.signal.aborted) return;
    this.layout();
    this.notify();
    // A bucket longer than a page, or the whole list read in order, needs more pages for the same view.
    this.want(this.view.start, this.view.end);
  }

  /** Row offsets: loaded buckets count what they hold, the others share the remaining rows. */
  private layout(): void {
    let known = 0;
    let unknown = 0;
    for (const bucket of this.buckets) {
      if (bucket.state === "done") known += bucket.items.length;
      else unknown++;
    }
    // At least one row each, so a bucket is loaded even when the total was counted too low (a live job).
    const share = unknown === 0 ? 0 : Math.max(1, (this.total - known) / unknown);
    const offsets = new Array<number>(this.buckets.length + 1);
    let position = 0;
    offsets[0] = 0;
    for (const [b, bucket] of this.buckets.entries()) {
      const size = bucket.state === "done" ? bucket.items.length : Math.max(share, bucket.items.length + (bucket.state === "partial" ? 1 : 0));
      position += size;
      offsets[b + 1] = Math.round(position);
    }
    this.offsets = offsets;
  }

  private bucketAt(index: number): number | undefined {
    if (index < 0 || index >= this.count()) return undefined;
    let low = 0;
    let high = this.buckets.length - 1;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (this.offsets[middle]! <= index) low = middle;
      else high = middle - 1;
    }
    return low;
  }
}

/** Rows held in memory (a log's lines, a short list). */
export class ArraySource<T> extends Notifier implements RowSource<T> {
  constructor(
    private items: readonly T[],
    private readonly keyOf: (item: T, index: number) => string = (_, index) => String(index),
  ) {
    super();
  }
  set(items: readonly T[]): void {
    this.items = items;
    this.notify();
  }
  count(): number {
    return this.items.length;
  }
  row(index: number): T | undefined {
    return this.items[index];
  }
  keyAt(index: number): string | undefined {
    const item = this.items[index];
    return item === undefined ? undefined : this.keyOf(item, index);
  }
  indexOfKey(key: string): number | undefined {
    const index = this.items.findIndex((item, i) => this.keyOf(item, i) === key);
    return index < 0 ? undefined : index;
  }
  want(): void {}
  retry(): void {}
}
