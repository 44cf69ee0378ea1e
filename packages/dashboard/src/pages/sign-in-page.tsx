/**
 * `/sign-in`: with `?code=` (the link `nimbus dashboard` prints) it signs in at once; otherwise it
 * takes the API token (a deployed stack's way in). Either way the browser gets a session cookie
 * and the page keeps no credential (docs/dashboard-api.md, "Sign-in").
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { signIn } from "../api/session.ts";
import { navigate } from "../router.ts";
import type { Route } from "../routes.ts";

export function SignInPage({ route }: { route: Extract<Route, { page: "sign-in" }> }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(route.code !== undefined);
  const tried = useRef<string | undefined>(undefined);

  const attempt = async (request: { code: string } | { token: string }) => {
    setBusy(true);
    setError(undefined);
    try {
      await signIn(request);
      // The code is spent: off the URL and out of history.
      navigate(route.next ?? "/", { replace: true });
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    if (route.code === undefined || tried.current === route.code) return;
    tried.current = route.code;
    void attempt({ code: route.code });
  }, [route.code]);

  const onSubmit = (event: Event) => {
    event.preventDefault();
    const token = String(new FormData(event.currentTarget as HTMLFormElement).get("token") ?? "").trim();
    if (!token) return setError("Enter the API token.");
    void attempt({ token });
  };
  return (
    <section class="sign-in">
      <h1>Sign in to Nimbus</h1>
      {route.code !== undefined && busy ? <p class="note">Signing in…</p> : null}
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <p>
        On the machine running the local stack, <code>npx nimbus dashboard</code> prints a link that signs you in (once, within five
        minutes).
      </p>
      <form onSubmit={onSubmit}>
        <label>
          API token
          <input name="token" type="password" autoComplete="current-password" required aria-describedby="token-help" />
        </label>
        <p id="token-help" class="note">
          For a deployed stack: its <code>ApiAdminToken</code>. The browser keeps a session cookie, not the token.
        </p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </section>
  );
}
