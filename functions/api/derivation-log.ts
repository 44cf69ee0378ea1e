import { apiHandler, json, logPage, parseDrvParameter, parseLogQuery } from "@nimbus/service";

/**
 * `GET /api/derivations/{drv}/log?attempt=&before=&after=&limit=`: a window of one attempt's log;
 * without parameters the latest attempt's last 10,000 lines.
 */
export const handler = apiHandler(async (event) =>
  json(200, await logPage(parseDrvParameter(event.pathParameters?.drv), parseLogQuery(event.queryStringParameters ?? {}))),
);
