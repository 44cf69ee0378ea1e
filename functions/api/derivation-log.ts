import { apiHandler, derivationLog, json, parseDrvParameter } from "@nimbus/service";

/** `GET /api/derivations/{drv}/log`: the latest build attempt's log (its last 10,000 lines). */
export const handler = apiHandler(async (event) => json(200, await derivationLog(parseDrvParameter(event.pathParameters?.drv))));
