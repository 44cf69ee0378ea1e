import { apiHandler, derivationDetail, json, parseDrvParameter } from "@nimbus/service";

/** `GET /api/derivations/{drv}`: one derivation with its status history, attempts and the jobs that need it. */
export const handler = apiHandler(async (event) => json(200, await derivationDetail(parseDrvParameter(event.pathParameters?.drv))));
