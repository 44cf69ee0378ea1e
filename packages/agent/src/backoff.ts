/**
 * Exponential back-off with jitter between reconnect attempts: many agents that lost the
 * service at the same moment must not all come back at the same moment.
 */

export interface BackoffOptions {
  /** Ceiling of the first delay. */
  initialMs?: number;
  /** No delay is ever longer. */
  maxMs?: number;
  factor?: number;
  /** Injectable for tests; returns [0, 1). */
  random?: () => number;
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.random = options.random ?? Math.random;
  }

  /** The ceiling grows `initial × factor^n` up to `max`; the delay is uniform in [ceiling/2, ceiling]. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
    // Stop growing the exponent once capped, so it never overflows to Infinity.
    if (ceiling < this.maxMs) this.attempt++;
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  /** After a welcome: the next failure starts again from the initial delay. */
  reset(): void {
    this.attempt = 0;
  }
}
