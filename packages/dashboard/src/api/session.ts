/**
 * How the page proves who it is to the API.
 *
 * PHASE ONE STAND-IN (replaced when POST /api/dashboard/sign-in exists, docs/dashboard-api.md):
 * the sign-in page keeps the API token in sessionStorage and every request carries it as a
 * bearer token. The finished design keeps no token in the page at all: sign-in trades a one-time
 * code or the token for an HttpOnly SameSite=Strict session cookie, and POST/DELETE requests
 * carry the session's CSRF token in `X-Nimbus-CSRF`.
 */
const TOKEN_KEY = "nimbus.phase-one-token";

export function signedIn(): boolean {
  return sessionStorage.getItem(TOKEN_KEY) !== null;
}

export function rememberToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** Headers that authenticate a request of this method. */
export function requestCredentials(_method: string): Record<string, string> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}
