import { apiHandler, json, listJobs, parseJobFilter, parseLimit } from "@nimbus/service";

/** `GET /api/jobs?repository=&ref=&cursor=&limit=`: jobs, newest first, a page at a time; of one repository (and branch) if asked. */
export const handler = apiHandler(async (event) => {
  const query = event.queryStringParameters ?? {};
  return json(200, await listJobs({ cursor: query.cursor, limit: parseLimit(query.limit), filter: parseJobFilter(query) }));
});
