import { apiHandler, getJobSummary, json } from "@nimbus/service";

/** `GET /api/jobs/{id}/summary`: the job and its counts per status — what the job page polls (one read). */
export const handler = apiHandler(async (event) => json(200, await getJobSummary(event.pathParameters?.id ?? "")));
