import { apiHandler, json, listJobDerivations, parseDerivationStatus, parseHashPrefix, parseLimit } from "@nimbus/service";

/** `GET /api/jobs/{id}/derivations?status=&from=&to=&cursor=&limit=`: a job's derivations, of one status and a range of store hashes if asked. */
export const handler = apiHandler(async (event) => {
  const query = event.queryStringParameters ?? {};
  const page = await listJobDerivations(event.pathParameters?.id ?? "", {
    status: parseDerivationStatus(query.status),
    from: parseHashPrefix("from", query.from),
    to: parseHashPrefix("to", query.to),
    cursor: query.cursor,
    limit: parseLimit(query.limit),
  });
  return json(200, page);
});
