/**
 * Live data by polling: the page asks again every few seconds while what it shows can still
 * change (a running job, a building log), and stops when it cannot; a hidden tab does not poll.
 * Each request revalidates the copy it holds (If-None-Match), so an unchanged answer is a 304.
 * Why not a WebSocket for browsers: docs/dashboard-api.md, "Live updates".
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type { Cached } from "../api/http.ts";

export interface Poll<T> {
  value: T | undefined;
  error: unknown;
  /** Asks again now (after an action that changes what is shown). */
  refresh(): void;
}

export interface PollOptions<T> {
  intervalMs: number;
  /** Keep polling while this holds for the latest value (default: always). */
  live?: (value: T) => boolean;
}

const MAX_BACKOFF_MS = 30_000;

export function usePoll<T>(
  load: (signal: AbortSignal, previous: Cached<T> | undefined) => Promise<Cached<T>>,
  deps: unknown[],
  options: PollOptions<T>,
): Poll<T> {
  const [state, setState] = useState<{ value: T | undefined; error: unknown }>({ value: undefined, error: undefined });
  const wake = useRef<() => void>(() => {});
  const latest = useRef({ load, options });
  latest.current = { load, options };

  useEffect(() => {
    const controller = new AbortController();
    let cached: Cached<T> | undefined;
    setState({ value: undefined, error: undefined });

    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          document.removeEventListener("visibilitychange", onVisible);
          resolve();
        };
        const onVisible = () => document.visibilityState === "visible" && done();
        const timer = setTimeout(() => (document.visibilityState === "visible" ? done() : undefined), ms);
        document.addEventListener("visibilitychange", onVisible);
        wake.current = done;
      });

    (async () => {
      let delay = latest.current.options.intervalMs;
      while (!controller.signal.aborted) {
        let live = true;
        try {
          const answer = await latest.current.load(controller.signal, cached);
          if (controller.signal.aborted) return;
          if (answer !== cached) setState({ value: answer.value, error: undefined });
          cached = answer;
          delay = latest.current.options.intervalMs;
          live = latest.current.options.live?.(answer.value) ?? true;
        } catch (error) {
          if (controller.signal.aborted) return;
          setState((previous) => ({ value: previous.value, error }));
          delay = Math.min(MAX_BACKOFF_MS, delay * 2);
        }
        // Not live: wait for a refresh() only.
        await sleep(live ? delay : 2 ** 31 - 1);
      }
    })();
    return () => {
      controller.abort();
      wake.current();
    };
  }, deps);

  return { value: state.value, error: state.error, refresh: () => wake.current() };
}
