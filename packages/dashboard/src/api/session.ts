/**
 * How the page proves who it is to the API (docs/dashboard-api.md, "Sign-in and sessions"): an
 * HttpOnly, SameSite=Strict session cookie the page never sees, set when a one-time code from
 * `nimbus dashboard` (or the API token) is traded at sign-in. The page holds only the session's
 * CSRF token, in memory, and sends it as X-Nimbus-CSRF on every request that changes something;
 * after a reload it asks the API for it again.
 */
import { ApiError, DashboardSession, SessionStatus, type SignInRequest } from "@nimbus/protocol";

let current: DashboardSession | undefined;
let known = false;
/** Bumped by every sign-in and sign-out: an answer to an older question must not undo them. */
let generation = 0;
const listeners = new Set<() => void>();
const changed = () => listeners.forEach((listener) => listener());

/** Whether the page has a session (undefined until `loadSession` has asked). */
export function signedIn(): boolean | undefined {
  return known ? current !== undefined : undefined;
}

export function onSessionChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Asks the API whether the browser's cookie is a session, and learns its CSRF token. */
export async function loadSession(): Promise<void> {
  const asked = generation;
  let session: DashboardSession | undefined;
  try {
    const response = await fetch("/api/dashboard/session", { credentials: "same-origin", cache: "no-store", headers: { accept: "application/json" } });
    const parsed = response.ok ? SessionStatus.safeParse(await response.json()) : undefined;
    session = parsed?.success ? (parsed.data.session ?? undefined) : undefined;
  } catch {
    session = undefined;
  }
  if (asked !== generation) return;
  current = session;
  known = true;
  changed();
}

/** Trades a one-time code or the API token for a session cookie; throws with the API's message. */
export async function signIn(request: SignInRequest): Promise<void> {
  const response = await fetch("/api/dashboard/sign-in", {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(request),
  });
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    const error = ApiError.safeParse(body);
    throw new Error(error.success ? error.data.error.message : `sign-in failed: HTTP ${response.status}`);
  }
  current = DashboardSession.parse(body);
  generation++;
  known = true;
  changed();
}

/** Ends the session on the server (the cookie is cleared) and here. */
export async function signOut(): Promise<void> {
  const csrf = current?.csrfToken;
  current = undefined;
  generation++;
  known = true;
  changed();
  if (csrf) {
    await fetch("/api/dashboard/sign-out", { method: "POST", credentials: "same-origin", headers: { "x-nimbus-csrf": csrf } }).catch(() => undefined);
  }
}

/** The API answered 401: the session is gone (expired, or signed out elsewhere). */
export function sessionEnded(): void {
  if (current === undefined && known) return;
  current = undefined;
  generation++;
  known = true;
  changed();
}

/** Headers that a request of this method needs besides the cookie. */
export function requestCredentials(method: string): Record<string, string> {
  return method === "GET" || !current ? {} : { "x-nimbus-csrf": current.csrfToken };
}
