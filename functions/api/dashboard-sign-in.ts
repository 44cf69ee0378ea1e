import { SignInRequest } from "@nimbus/protocol";
import { apiHandler, checkOrigin, json, overHttps, parseBody, requireJsonBody, signIn } from "@nimbus/service";

/**
 * `POST /api/dashboard/sign-in` (the body is the credential): a one-time code or the API token
 * becomes a session cookie. Only from the dashboard's own origin, and only as JSON.
 */
export const handler = apiHandler(
  async (event) => {
    checkOrigin(event, false);
    requireJsonBody(event);
    const { session, cookie } = await signIn(parseBody(event, SignInRequest), overHttps(event));
    return json(200, session, { cookies: [cookie] });
  },
  { public: true },
);
