import { apiHandler, json, listJobAttributes, parseAttributeQuery, parseLimit } from "@nimbus/service";

/** `GET /api/jobs/{id}/attributes?prefix=&errors=only&cursor=&limit=`: a job's attributes in path order. */
export const handler = apiHandler(async (event) => {
  const query = event.queryStringParameters ?? {};
  return json(200, await listJobAttributes(event.pathParameters?.id ?? "", parseAttributeQuery(query, parseLimit(query.limit))));
});
