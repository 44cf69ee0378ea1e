import type { SessionStatus } from "@nimbus/protocol";
import { apiHandler, json, sessionOf, sessionView } from "@nimbus/service";

/** `GET /api/dashboard/session`: the page's CSRF token and expiry again (after a reload), or null without a session. */
export const handler = apiHandler(
  async (event) => {
    const session = await sessionOf(event);
    const body: SessionStatus = { session: session ? sessionView(session) : null };
    return json(200, body);
  },
  { public: true },
);
