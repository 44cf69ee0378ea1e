import { apiHandler, badRequest, json, rerunJob } from "@nimbus/service";

/** `POST /api/jobs/{id}/rerun?rebuildFailures=true`: the same commit again, as a new job. */
export const handler = apiHandler(async (event) => {
  const flag = event.queryStringParameters?.rebuildFailures ?? "false";
  if (flag !== "true" && flag !== "false") throw badRequest("rebuildFailures must be true or false");
  return json(201, await rerunJob(event.pathParameters?.id ?? "", flag === "true"));
});
