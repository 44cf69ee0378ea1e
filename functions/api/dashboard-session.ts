import { apiHandler, json, sessionOf, sessionView, unauthorized } from "@nimbus/service";

/** `GET /api/dashboard/session`: the page's CSRF token and expiry again (after a reload), from its cookie. */
export const handler = apiHandler(
  async (event) => {
    const session = await sessionOf(event);
    if (!session) throw unauthorized("not signed in to the dashboard");
    return json(200, sessionView(session));
  },
  { public: true },
);
