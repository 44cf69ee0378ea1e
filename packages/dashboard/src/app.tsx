/** The page frame (header, navigation, main) and which page a URL shows. */
import { useEffect, useRef } from "preact/hooks";
import { SIGNED_OUT } from "./api/http.ts";
import { signedIn, signOut } from "./api/session.ts";
import { AgentsPage } from "./pages/agents-page.tsx";
import { DerivationPage } from "./pages/derivation-page.tsx";
import { JobPage } from "./pages/job-page.tsx";
import { JobsPage } from "./pages/jobs-page.tsx";
import { SignInPage } from "./pages/sign-in-page.tsx";
import { navigate, onPageChange, usePlace } from "./router.ts";
import { parseRoute, routeHref, type Route } from "./routes.ts";

export function App() {
  const place = usePlace();
  let route = parseRoute(place.pathname, place.search);
  if (route.page !== "sign-in" && !signedIn()) route = { page: "sign-in", next: place.pathname + place.search };
  const main = useRef<HTMLElement>(null);

  // A new page: start at its top and move focus to it, as a page load would (screen readers announce it).
  useEffect(
    () =>
      onPageChange(() => {
        scrollTo(0, 0);
        main.current?.focus({ preventScroll: true });
      }),
    [],
  );

  useEffect(() => {
    const signedOut = () => {
      signOut();
      if (location.pathname !== "/sign-in") navigate(routeHref({ page: "sign-in", next: location.pathname + location.search }), { replace: true });
    };
    addEventListener(SIGNED_OUT, signedOut);
    return () => removeEventListener(SIGNED_OUT, signedOut);
  }, []);

  useEffect(() => {
    document.title = `${title(route)} · Nimbus`;
  });

  const section = route.page === "agents" ? "agents" : route.page === "sign-in" ? undefined : "jobs";
  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/">
          Nimbus
        </a>
        {route.page !== "sign-in" ? (
          <nav aria-label="Main">
            <a href="/" aria-current={section === "jobs" ? "page" : undefined}>
              Jobs
            </a>
            <a href="/agents" aria-current={section === "agents" ? "page" : undefined}>
              Agents
            </a>
          </nav>
        ) : null}
        {route.page !== "sign-in" ? (
          <button
            type="button"
            class="link-button"
            onClick={() => {
              signOut();
              navigate("/sign-in");
            }}
          >
            Sign out
          </button>
        ) : null}
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <Page route={route} />
      </main>
    </>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case "jobs":
      return <JobsPage route={route} />;
    case "job":
      return <JobPage key={route.jobId} route={route} />;
    case "derivation":
      return <DerivationPage key={route.drv} route={route} />;
    case "agents":
      return <AgentsPage />;
    case "sign-in":
      return <SignInPage route={route} />;
    case "not-found":
      return (
        <section>
          <h1>Not found</h1>
          <p>
            There is no page at <code>{route.path}</code>. <a href="/">See the jobs</a>.
          </p>
        </section>
      );
  }
}

function title(route: Route): string {
  switch (route.page) {
    case "jobs":
      return route.repository ? `Jobs of ${route.repository}` : "Jobs";
    case "job":
      return `Job ${route.jobId}`;
    case "derivation":
      return route.drv.replace(/^[^-]*-/, "");
    case "agents":
      return "Agents";
    case "sign-in":
      return "Sign in";
    case "not-found":
      return "Not found";
  }
}
