/** The arithmetic of a virtual list with rows of one fixed height. */

export interface RowWindow {
  /** Rows to render: [start, end), the visible ones plus some overscan. */
  start: number;
  end: number;
  /** Rows at least partly visible: [first, last). */
  first: number;
  last: number;
}

export function rowWindow(scrollTop: number, viewportHeight: number, rowHeight: number, count: number, overscan = 10): RowWindow {
  const first = Math.min(count, Math.max(0, Math.floor(scrollTop / rowHeight)));
  const last = Math.min(count, Math.max(first, Math.ceil((scrollTop + viewportHeight) / rowHeight)));
  return { first, last, start: Math.max(0, first - overscan), end: Math.min(count, last + overscan) };
}

/** The scrollTop that brings row `index` fully into view, moving as little as possible. */
export function scrollToShow(index: number, scrollTop: number, viewportHeight: number, rowHeight: number): number {
  const top = index * rowHeight;
  if (top < scrollTop) return top;
  if (top + rowHeight > scrollTop + viewportHeight) return top + rowHeight - viewportHeight;
  return scrollTop;
}

/** Where a key press moves the active row (the list's keyboard navigation), or undefined if it does not. */
export function keyMove(key: string, active: number, count: number, rowsPerPage: number): number | undefined {
  if (count === 0) return undefined;
  const clamp = (n: number) => Math.min(count - 1, Math.max(0, n));
  switch (key) {
    case "ArrowDown":
    case "j":
      return clamp(active + 1);
    case "ArrowUp":
    case "k":
      return clamp(active - 1);
    case "PageDown":
      return clamp(active + Math.max(1, rowsPerPage - 1));
    case "PageUp":
      return clamp(active - Math.max(1, rowsPerPage - 1));
    case "Home":
      return 0;
    case "End":
      return count - 1;
    default:
      return undefined;
  }
}
