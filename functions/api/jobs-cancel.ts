import { apiHandler, cancelJob, json } from "@nimbus/service";

/** `POST /api/jobs/{id}/cancel` */
export const handler = apiHandler(async (event) => json(200, await cancelJob(event.pathParameters?.id ?? "")));
