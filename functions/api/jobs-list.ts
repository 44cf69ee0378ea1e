import { apiHandler, json, listJobs, parseLimit } from "@nimbus/service";

/** `GET /api/jobs?cursor=&limit=`: jobs, newest first, a page at a time. */
export const handler = apiHandler(async (event) => {
  const query = event.queryStringParameters ?? {};
  return json(200, await listJobs({ cursor: query.cursor, limit: parseLimit(query.limit) }));
});
