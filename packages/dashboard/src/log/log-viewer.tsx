/**
 * A build log: opens at its tail however long the log is, loads older lines as the view
 * reaches the top, follows new lines while the build runs (about a second behind) and
 * searches what it holds — or, on request, the whole log.
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { getLog } from "../api/endpoints.ts";
import { ErrorNote } from "../components/error-note.tsx";
import { plural } from "../format.ts";
import { ArraySource } from "../list/row-source.ts";
import { VirtualList } from "../list/virtual-list.tsx";
import { LogBuffer, type LogLine } from "./log-buffer.ts";

const LINE_HEIGHT = 20;
/** Lines per request: the tail, and each page backwards. */
const PAGE_LINES = 2_000;
const FOLLOW_MS = 1_000;
/** Load older lines when the view comes this close to the first line held. */
const NEAR_TOP = 100;

export function LogViewer({ drv, attempt, building }: { drv: string; attempt?: number; building: boolean }) {
  const source = useMemo(() => new ArraySource<LogLine>([], (line) => String(line.id)), [drv, attempt]);
  const buffer = useRef<LogBuffer | undefined>(undefined);
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<unknown>();
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [query, setQuery] = useState("");
  const [match, setMatch] = useState(0);
  const [searchingAll, setSearchingAll] = useState(false);

  const changed = () => {
    source.set(buffer.current!.lines);
    setVersion((v) => v + 1);
  };

  // The tail first, then what is appended while the attempt builds.
  useEffect(() => {
    const controller = new AbortController();
    buffer.current = undefined;
    setError(undefined);
    (async () => {
      try {
        buffer.current = new LogBuffer(await getLog(drv, { attempt, limit: PAGE_LINES }, controller.signal));
        changed();
        while (!controller.signal.aborted && buffer.current.end !== undefined && (buffer.current.building || building)) {
          await new Promise((r) => setTimeout(r, FOLLOW_MS));
          if (controller.signal.aborted) return;
          const page = await getLog(drv, { attempt: buffer.current.attempt, after: buffer.current.end }, controller.signal);
          if (buffer.current.append(page) > 0) changed();
          else setVersion((v) => v + 1);
        }
      } catch (failure) {
        if (!controller.signal.aborted) setError(failure);
      }
    })();
    return () => controller.abort();
  }, [drv, attempt, building]);

  const loadOlder = async () => {
    const held = buffer.current;
    if (!held?.canLoadOlder() || loadingOlder) return;
    setLoadingOlder(true);
    try {
      held.prepend(await getLog(drv, { attempt: held.attempt, before: held.start, limit: PAGE_LINES }));
      changed();
    } catch (failure) {
      setError(failure);
    } finally {
      setLoadingOlder(false);
    }
  };

  const searchWholeLog = async () => {
    setSearchingAll(true);
    try {
      while (buffer.current?.canLoadOlder()) {
        buffer.current.prepend(await getLog(drv, { attempt: buffer.current.attempt, before: buffer.current.start, limit: PAGE_LINES * 5 }));
        changed();
      }
    } catch (failure) {
      setError(failure);
    } finally {
      setSearchingAll(false);
    }
  };

  const held = buffer.current;
  const matches = useMemo(() => (held ? held.search(query) : []), [held, version, query]);
  const current = matches.length ? Math.min(match, matches.length - 1) : -1;
  const step = (by: number) => matches.length && setMatch((current + by + matches.length) % matches.length);

  return (
    <section class="log" aria-labelledby="log-heading">
      <div class="log-bar">
        <h2 id="log-heading">Log{held?.attempt ? ` of attempt ${held.attempt}` : ""}</h2>
        <form
          role="search"
          onSubmit={(event) => {
            event.preventDefault();
            step(1);
          }}
        >
          <label>
            Search the log
            <input
              type="search"
              value={query}
              onInput={(event) => {
                setQuery((event.currentTarget as HTMLInputElement).value);
                setMatch(0);
              }}
              onKeyDown={(event) => {
                if (event.key === "Enter" && event.shiftKey) {
                  event.preventDefault();
                  step(-1);
                }
              }}
            />
          </label>
          <span class="note" role="status">
            {query ? (matches.length ? `${current + 1} of ${matches.length}` : "no match") : ""}
            {query && held?.canLoadOlder() ? " in the lines loaded" : ""}
          </span>
          {query && held?.canLoadOlder() ? (
            <button type="button" disabled={searchingAll} onClick={searchWholeLog}>
              {searchingAll ? "Loading the whole log…" : "Search the whole log"}
            </button>
          ) : null}
        </form>
      </div>
      <ErrorNote error={error} what="the log" />
      {held === undefined && !error ? <p class="note">Loading the log…</p> : null}
      {held !== undefined ? (
        <>
          <p class="note">
            {plural(held.lines.length, "line")}
            {held.canLoadOlder() ? (loadingOlder ? " — loading earlier lines…" : " — earlier lines load as you scroll up") : ""}
            {held.truncated && !held.canLoadOlder() ? " — the last lines only" : ""}
            {held.building ? " — building, following new lines" : ""}
          </p>
          <VirtualList
            id="log-line"
            className="log-lines"
            source={source}
            rowHeight={LINE_HEIGHT}
            label="log lines"
            followEnd
            showIndex={current >= 0 ? matches[current] : undefined}
            onView={(first) => first < NEAR_TOP && void loadOlder()}
            renderRow={(line) => <Line text={line.text} query={query} />}
            empty={held.building ? "Nothing printed yet." : "This attempt printed nothing."}
          />
        </>
      ) : null}
    </section>
  );
}

/** One line with each occurrence of the search marked. */
function Line({ text, query }: { text: string; query: string }) {
  if (!query) return <span class="line">{text}</span>;
  const parts = [];
  const lower = text.toLowerCase();
  const needle = query.toLowerCase();
  let at = 0;
  for (let found = lower.indexOf(needle); found >= 0; found = lower.indexOf(needle, at)) {
    parts.push(text.slice(at, found), <mark key={found}>{text.slice(found, found + needle.length)}</mark>);
    at = found + needle.length;
  }
  parts.push(text.slice(at));
  return <span class="line">{parts}</span>;
}
