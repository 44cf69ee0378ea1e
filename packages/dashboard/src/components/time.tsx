import { useEffect, useState } from "preact/hooks";
import { ago } from "../format.ts";

/** The current time, moving every `everyMs` (for "5 min ago" and running durations). */
export function useNow(everyMs = 5_000): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

/** A time as "5 min ago", with the exact time on hover and for screen readers' `datetime`. */
export function Ago({ at, now }: { at: string; now: number }) {
  return (
    <time dateTime={at} title={new Date(at).toLocaleString()}>
      {ago(at, now)}
    </time>
  );
}
