import { isMissingEndpoint } from "../api/http.ts";

/** An API failure as one line a person can act on. */
export function ErrorNote({ error, what }: { error: unknown; what: string }) {
  if (!error) return null;
  if (isMissingEndpoint(error)) return <p class="note">This Nimbus API does not offer {what} yet.</p>;
  return (
    <p class="error" role="alert">
      Could not load {what}: {error instanceof Error ? error.message : String(error)}
    </p>
  );
}
