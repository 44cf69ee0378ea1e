/**
 * `/sign-in`: the finished design signs in with the one-time link `nimbus dashboard` prints
 * (local stack) or with the API token (a deployed stack) — docs/dashboard-api.md, "Sign-in".
 * PHASE ONE STAND-IN: only the token form exists, and it keeps the token in sessionStorage.
 */
import { useState } from "preact/hooks";
import { JobList } from "@nimbus/protocol";
import { apiGet } from "../api/http.ts";
import { rememberToken, signOut } from "../api/session.ts";
import { navigate } from "../router.ts";
import type { Route } from "../routes.ts";

export function SignInPage({ route }: { route: Extract<Route, { page: "sign-in" }> }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const onSubmit = async (event: Event) => {
    event.preventDefault();
    const token = String(new FormData(event.currentTarget as HTMLFormElement).get("token") ?? "").trim();
    if (!token) return setError("Enter the API token.");
    setBusy(true);
    rememberToken(token);
    try {
      // Proves the token before going on: one cheap read.
      await apiGet("/api/jobs?limit=1", JobList);
      navigate(route.next ?? "/", { replace: true });
    } catch (failure) {
      signOut();
      setError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="sign-in">
      <h1>Sign in to Nimbus</h1>
      <form onSubmit={onSubmit}>
        <label>
          API token
          <input name="token" type="password" autoComplete="current-password" required aria-describedby="token-help" />
        </label>
        <p id="token-help" class="note">
          The stack's <code>ApiAdminToken</code>: for the local stack, <code>jq -r .ApiAdminToken .nimbus/secrets.json</code>.
        </p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
      </form>
    </section>
  );
}
