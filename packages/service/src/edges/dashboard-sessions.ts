/**
 * Dashboard sign-in (docs/dashboard-api.md, "Sign-in and sessions"). `nimbus dashboard` asks for
 * a one-time code (bearer only) and prints a link with it; the page trades the code — or, on a
 * deployed stack, the API token — for a session: an opaque HttpOnly, SameSite=Strict cookie.
 * The page learns only the session's CSRF token and expiry. Codes and cookies are stored as
 * their SHA-256 alone (DashboardSessions); a code is consumed by a conditional delete, so two
 * sign-ins with one code cannot both succeed.
 */
import { randomBytes } from "node:crypto";
import type { DashboardSession, SignInCode, SignInRequest } from "@nimbus/protocol";
import { NimbusError, unauthorized } from "../platform/errors.ts";
import { secretValue } from "../platform/linked-resources.ts";
import { hashSecret, secretsEqual } from "../platform/token-secret.ts";
import type { DashboardSessionItem } from "../storage/items.ts";
import { DashboardSessions } from "../storage/tables.ts";
import type { HttpEvent } from "./http-types.ts";

export const SESSION_COOKIE = "nimbus_session";
export const CSRF_HEADER = "x-nimbus-csrf";
export const CODE_TTL_MS = 5 * 60_000;
export const SESSION_TTL_MS = 12 * 3600_000;

export const forbidden = (message: string) => new NimbusError("csrf", message, 403);

const secret = () => randomBytes(32).toString("base64url");
const epoch = (at: Date) => Math.floor(at.getTime() / 1000);
const codeId = (code: string) => `code#${hashSecret(code)}`;
const sessionId = (cookie: string) => `session#${hashSecret(cookie)}`;

/** `POST /api/dashboard/codes`: a one-time sign-in code, valid five minutes. */
export async function createSignInCode(now = new Date()): Promise<SignInCode> {
  const code = secret();
  const expires = new Date(now.getTime() + CODE_TTL_MS);
  const item: DashboardSessionItem = {
    id: codeId(code),
    kind: "code",
    createdAt: now.toISOString(),
    expiresAt: expires.toISOString(),
    expiresAtEpoch: epoch(expires),
  };
  await DashboardSessions.put(item, { expression: "attribute_not_exists(id)" });
  return { code, expiresAt: item.expiresAt };
}

export interface SignedIn {
  session: DashboardSession;
  /** The `Set-Cookie` value: the session's secret, seen by the browser alone. */
  cookie: string;
}

/**
 * `POST /api/dashboard/sign-in`: a code (consumed: a second use is refused) or the API token
 * (compared in constant time) becomes a new session. Refusals store nothing.
 */
export async function signIn(request: SignInRequest, secure: boolean, now = new Date()): Promise<SignedIn> {
  if ("code" in request) {
    const consumed = await DashboardSessions.delete(
      { id: codeId(request.code) },
      { expression: "attribute_exists(id) AND kind = :code AND expiresAtEpoch > :now", values: { ":code": "code", ":now": epoch(now) } },
    );
    if (!consumed) throw unauthorized("this sign-in link was used already or has expired — run `nimbus dashboard` for a new one");
  } else if (!secretsEqual(request.token, secretValue("ApiAdminToken"))) {
    throw unauthorized("API token refused — use the stack's ApiAdminToken");
  }
  const cookie = secret();
  const expires = new Date(now.getTime() + SESSION_TTL_MS);
  const item: DashboardSessionItem = {
    id: sessionId(cookie),
    kind: "session",
    createdAt: now.toISOString(),
    expiresAt: expires.toISOString(),
    expiresAtEpoch: epoch(expires),
    csrfToken: secret(),
    via: "code" in request ? "code" : "token",
  };
  await DashboardSessions.put(item, { expression: "attribute_not_exists(id)" });
  return { session: sessionView(item), cookie: sessionCookie(cookie, SESSION_TTL_MS / 1000, secure) };
}

/** The session a request's cookie names, if it exists and has not expired (TTL deletion is late). */
export async function sessionOf(event: HttpEvent, now = new Date()): Promise<DashboardSessionItem | undefined> {
  const cookie = cookieValue(event, SESSION_COOKIE);
  if (!cookie) return undefined;
  const item = await DashboardSessions.get({ id: sessionId(cookie) });
  return item?.kind === "session" && item.expiresAtEpoch > epoch(now) ? item : undefined;
}

/** `POST /api/dashboard/sign-out`: the session is deleted; the cookie is cleared. */
export async function signOut(event: HttpEvent, secure: boolean): Promise<string> {
  const cookie = cookieValue(event, SESSION_COOKIE);
  if (cookie) await DashboardSessions.delete({ id: sessionId(cookie) });
  return sessionCookie("", 0, secure);
}

export const sessionView = (item: DashboardSessionItem): DashboardSession => ({ csrfToken: item.csrfToken ?? "", expiresAt: item.expiresAt });

/** Scoped to the API, out of scripts' reach, never sent by another site. */
function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; Path=/api; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? "; Secure" : ""}`;
}

/** A cookie's value from the event (API Gateway v2 and the local runtime pass `cookies`). */
export function cookieValue(event: HttpEvent, name: string): string | undefined {
  for (const cookie of event.cookies ?? []) {
    const eq = cookie.indexOf("=");
    if (eq > 0 && cookie.slice(0, eq).trim() === name) return cookie.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

const header = (event: HttpEvent, name: string) => event.headers?.[name] ?? undefined;

/** Whether the request came over HTTPS (its cookie is then `Secure`). */
export const overHttps = (event: HttpEvent) => (header(event, "x-forwarded-proto") ?? "https") === "https";

/**
 * The request's own origin: the scheme and the host the browser used — `X-Forwarded-Host` behind
 * the CloudFront router (docs/deploy.md), else `Host`.
 */
export function ownOrigin(event: HttpEvent): string | undefined {
  const host = header(event, "x-forwarded-host") ?? header(event, "host") ?? event.requestContext?.domainName;
  return host ? `${overHttps(event) ? "https" : "http"}://${host}` : undefined;
}

/** Refuses a request a page of another origin made (a missing Origin is refused too when `required`). */
export function checkOrigin(event: HttpEvent, required: boolean): void {
  const origin = header(event, "origin");
  if (origin === undefined) {
    if (required) throw forbidden("a request with a dashboard session must carry its Origin");
    return;
  }
  if (origin !== ownOrigin(event)) throw forbidden(`requests from ${origin} are refused: the dashboard signs in only from its own origin`);
}

/** A state-changing request with a session cookie: its own origin, and the session's CSRF token in X-Nimbus-CSRF. */
export function checkCsrf(event: HttpEvent, session: DashboardSessionItem): void {
  checkOrigin(event, true);
  const sent = header(event, CSRF_HEADER);
  if (!sent || !session.csrfToken || !secretsEqual(sent, session.csrfToken)) {
    throw forbidden(`a request with a dashboard session must send the session's CSRF token in X-Nimbus-CSRF`);
  }
}
