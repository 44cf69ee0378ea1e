import { apiHandler, json, listJobDerivations, parseDerivationStatus, parseLimit } from "@nimbus/service";

/** `GET /api/jobs/{id}/derivations?status=&cursor=&limit=`: a job's derivations, one status at a time if asked. */
export const handler = apiHandler(async (event) => {
  const query = event.queryStringParameters ?? {};
  const page = await listJobDerivations(event.pathParameters?.id ?? "", {
    status: parseDerivationStatus(query.status),
    cursor: query.cursor,
    limit: parseLimit(query.limit),
  });
  return json(200, page);
});
