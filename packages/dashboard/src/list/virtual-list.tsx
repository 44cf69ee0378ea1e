/**
 * A list that renders only the rows in view (plus a few either side), however many it spans:
 * rows have one fixed height, so row i sits at i × height and the scrollbar covers them all.
 * Keyboard: the list is one tab stop; arrows, j/k, Page Up/Down, Home/End move the active row,
 * Enter opens it. Screen readers hear it as a listbox with each row's position in the whole.
 */
import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { beforeLeaving, navigate } from "../router.ts";
import type { RowSource } from "./row-source.ts";
import { keyMove, rowWindow, scrollToShow } from "./window.ts";

export interface VirtualListProps<T> {
  source: RowSource<T>;
  /** Pixels; must match the CSS of the rows. */
  rowHeight: number;
  /** What the list is, for screen readers (e.g. "failed derivations"). */
  label: string;
  /** Prefix of row element ids (unique on the page). */
  id: string;
  renderRow: (row: T, index: number) => ComponentChildren;
  /** Shown for a row not loaded yet. */
  placeholder?: ComponentChildren;
  /** Where a row leads (a link: middle-click opens a tab). */
  rowHref?: (row: T) => string | undefined;
  /** While the view is at the end, keep it there as rows are added (a live log). */
  followEnd?: boolean;
  /** Bring this row into view and make it active whenever it changes. */
  showIndex?: number;
  /** Told which rows are in view, after each change. */
  onView?: (first: number, last: number) => void;
  className?: string;
  empty?: ComponentChildren;
}

/** Where a list was when its page was left: kept in the history entry. */
function savedPlace(state: unknown, key: string): { top: number; key?: string } | undefined {
  const saved = (state as Record<string, unknown> | null)?.[key] as { top?: unknown; key?: unknown } | undefined;
  if (typeof saved?.top !== "number") return undefined;
  return { top: saved.top, ...(typeof saved.key === "string" ? { key: saved.key } : {}) };
}

export function VirtualList<T>(props: VirtualListProps<T>) {
  const { source, rowHeight } = props;
  const element = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(0);
  const [active, setActive] = useState<number | undefined>(undefined);
  const [rowsVersion, setRowsVersion] = useState(0);
  const rowsChanged = () => setRowsVersion((n) => n + 1);
  /** The first visible row and its key, to keep it in place when rows above it change. */
  const anchor = useRef<{ index: number; key: string | undefined }>({ index: 0, key: undefined });
  const atEnd = useRef(true);

  const sourceRef = useRef(source);
  sourceRef.current = source;
  const count = source.count();
  const view = rowWindow(scrollTop, viewport, rowHeight, count);

  useEffect(() => source.subscribe(rowsChanged), [source]);

  // Back to this page: the list scrolls to where it was, and the row that was first in view is
  // kept first once it is loaded again (a long list's estimated positions may differ by a few).
  const stateKey = `nimbus:scroll:${props.id}`;
  const restore = useRef<{ top: number; key?: string } | undefined>(savedPlace(history.state, stateKey));
  useEffect(
    () =>
      beforeLeaving(() => {
        const el = element.current;
        if (!el) return;
        const key = sourceRef.current.keyAt(Math.floor(el.scrollTop / rowHeight));
        history.replaceState({ ...(history.state as object | null), [stateKey]: { top: el.scrollTop, key } }, "");
      }),
    [stateKey],
  );
  useLayoutEffect(() => {
    const el = element.current;
    if (!el || restore.current === undefined || count <= 1) return;
    el.scrollTop = restore.current.top;
    anchor.current = { index: Math.floor(el.scrollTop / rowHeight), key: restore.current.key };
    restore.current = undefined;
    setScrollTop(el.scrollTop);
  }, [count]);

  useLayoutEffect(() => {
    const el = element.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setViewport(el.clientHeight));
    observer.observe(el);
    setViewport(el.clientHeight);
    return () => observer.disconnect();
  }, []);

  // After rows arrive: stay at the end (a followed log), or keep the anchor row where it was.
  useLayoutEffect(() => {
    const el = element.current;
    if (!el) return;
    if (props.followEnd && atEnd.current) {
      el.scrollTop = el.scrollHeight;
    } else if (anchor.current.key !== undefined) {
      const moved = source.indexOfKey(anchor.current.key);
      if (moved !== undefined && moved !== anchor.current.index) {
        el.scrollTop += (moved - anchor.current.index) * rowHeight;
        anchor.current.index = moved;
      }
    }
    setScrollTop(el.scrollTop);
  }, [count, source, rowsVersion]);

  useEffect(() => {
    source.want(view.start, view.end);
    props.onView?.(view.first, view.last);
  }, [source, view.start, view.end, count]);

  useEffect(() => {
    if (props.showIndex === undefined) return;
    setActive(props.showIndex);
    const el = element.current;
    if (el) el.scrollTop = Math.max(0, props.showIndex * rowHeight - el.clientHeight / 3);
  }, [props.showIndex]);

  const onScroll = () => {
    // A scroll event can arrive after the list left the page (a navigation away while it scrolled).
    const el = element.current;
    if (!el) return;
    setScrollTop(el.scrollTop);
    atEnd.current = el.scrollTop + el.clientHeight >= el.scrollHeight - rowHeight / 2;
    const first = Math.floor(el.scrollTop / rowHeight);
    // A scroll we made to the anchor (not yet loaded) keeps it; any other names a new one.
    const key = source.keyAt(first);
    if (key !== undefined || first !== anchor.current.index) anchor.current = { index: first, key };
  };

  const moveTo = (index: number) => {
    setActive(index);
    const el = element.current;
    if (!el) return;
    el.scrollTop = scrollToShow(index, el.scrollTop, el.clientHeight, rowHeight);
  };

  const onKeyDown = (event: KeyboardEvent) => {
    const rowsPerPage = Math.max(1, Math.floor(viewport / rowHeight));
    const next = keyMove(event.key, active ?? view.first - 1, count, rowsPerPage);
    if (next !== undefined) {
      event.preventDefault();
      moveTo(next);
      return;
    }
    if (event.key === "Enter" && active !== undefined) {
      const row = source.row(active);
      const href = row === undefined ? undefined : props.rowHref?.(row);
      if (href) {
        event.preventDefault();
        navigate(href);
      }
    }
  };

  const rows: ComponentChildren[] = [];
  for (let index = view.start; index < view.end; index++) {
    const row = source.row(index);
    const href = row === undefined ? undefined : props.rowHref?.(row);
    const common = {
      key: index,
      id: `${props.id}-${index}`,
      role: "option" as const,
      "aria-selected": index === active,
      "aria-setsize": count,
      "aria-posinset": index + 1,
      class: `vrow${index === active ? " active" : ""}${row === undefined ? " pending" : ""}`,
      style: { top: `${index * rowHeight}px`, height: `${rowHeight}px` },
      onMouseDown: () => setActive(index),
    };
    if (row === undefined) rows.push(<div {...common}>{props.placeholder ?? "Loading…"}</div>);
    else if (href) rows.push(<a {...common} href={href} tabIndex={-1}>{props.renderRow(row, index)}</a>);
    else rows.push(<div {...common}>{props.renderRow(row, index)}</div>);
  }

  const error = source.error();
  return (
    <div class={`vlist-frame ${props.className ?? ""}`}>
      <div
        ref={element}
        class="vlist"
        // As tall as its rows, up to the stylesheet's --list-height.
        style={{ height: `min(${Math.max(count, 2) * rowHeight + 2}px, var(--list-height))` }}
        // An empty list is its note alone: a listbox without options is not one (ARIA).
        role={count > 0 ? "listbox" : undefined}
        tabIndex={count > 0 ? 0 : undefined}
        aria-label={count > 0 ? props.label : undefined}
        aria-activedescendant={active !== undefined && active >= view.start && active < view.end ? `${props.id}-${active}` : undefined}
        onScroll={onScroll}
        onKeyDown={onKeyDown}
        onFocus={() => active === undefined && count > 0 && setActive(Math.min(count - 1, view.first))}
      >
        <div class="vlist-spacer" style={{ height: `${count * rowHeight}px` }}>
          {rows}
        </div>
        {count === 0 && !error ? <p class="vlist-empty">{props.empty ?? "Nothing here."}</p> : null}
      </div>
      {error ? (
        <p class="error" role="alert">
          {error}{" "}
          <button type="button" onClick={() => source.retry()}>
            Try again
          </button>
        </p>
      ) : null}
    </div>
  );
}
