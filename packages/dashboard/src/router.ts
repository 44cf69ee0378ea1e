/**
 * Navigation with the History API: links are plain `<a href>`; a click on one of this site's
 * pages becomes a pushState instead of a page load, so the back button and shared URLs work
 * as on any site.
 */
import { useEffect, useState } from "preact/hooks";

const NAVIGATED = "nimbus:navigated";

export interface Place {
  pathname: string;
  search: string;
}

const here = (): Place => ({ pathname: location.pathname, search: location.search });

const leaving = new Set<() => void>();

/**
 * Calls `save` just before this page's history entry is left for a new one (not on back or
 * forward), so a component can keep its state there, e.g. a list's scroll position.
 */
export function beforeLeaving(save: () => void): () => void {
  leaving.add(save);
  return () => leaving.delete(save);
}

/** Goes to `href` (this site): a new history entry, or `replace` the current one (a filter typed in). */
export function navigate(href: string, options: { replace?: boolean } = {}): void {
  if (!options.replace) for (const save of leaving) save();
  if (options.replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  dispatchEvent(new CustomEvent(NAVIGATED, { detail: { replace: options.replace ?? false } }));
}

/** The current page's path and query, re-rendering on every navigation and back/forward. */
export function usePlace(): Place {
  const [place, setPlace] = useState(here);
  useEffect(() => {
    const update = () => setPlace(here());
    addEventListener("popstate", update);
    addEventListener(NAVIGATED, update);
    return () => {
      removeEventListener("popstate", update);
      removeEventListener(NAVIGATED, update);
    };
  }, []);
  return place;
}

/** Calls `listener` after every navigation to a new page (not on a replaced filter). */
export function onPageChange(listener: () => void): () => void {
  const handler = (event: Event) => {
    if (!(event instanceof CustomEvent) || !event.detail?.replace) listener();
  };
  addEventListener(NAVIGATED, handler);
  addEventListener("popstate", handler);
  return () => {
    removeEventListener(NAVIGATED, handler);
    removeEventListener("popstate", handler);
  };
}

/** Turns clicks on same-site links into navigations (left button, no modifier, no target). */
export function interceptLinks(root: HTMLElement): void {
  root.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = (event.target as Element | null)?.closest?.("a[href]");
    if (!(link instanceof HTMLAnchorElement) || link.target || link.hasAttribute("download")) return;
    const url = new URL(link.href);
    if (url.origin !== location.origin) return;
    event.preventDefault();
    if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search);
  });
}
