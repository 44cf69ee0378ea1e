import { apiHandler, getJobView, json } from "@nimbus/service";

/** `GET /api/jobs/{id}`: a job with its derivation counts, attributes and first failures. */
export const handler = apiHandler(async (event) => json(200, await getJobView(event.pathParameters?.id ?? "")));
