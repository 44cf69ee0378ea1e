import { apiHandler, createSignInCode, json } from "@nimbus/service";

/** `POST /api/dashboard/codes` (API token only): a one-time sign-in code for `nimbus dashboard`'s link. */
export const handler = apiHandler(async () => json(201, await createSignInCode()), { bearerOnly: true });
