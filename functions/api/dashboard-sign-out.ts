import { apiHandler, checkCsrf, json, overHttps, sessionOf, signOut } from "@nimbus/service";

/** `POST /api/dashboard/sign-out`: ends the cookie's session (from its own page only) and clears the cookie. */
export const handler = apiHandler(
  async (event) => {
    const session = await sessionOf(event);
    if (session) checkCsrf(event, session);
    return json(200, { signedOut: true }, { cookies: [await signOut(event, overHttps(event))] });
  },
  { public: true },
);
