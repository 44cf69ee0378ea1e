import { apiHandler, json, scheduleList } from "@nimbus/service";

/** `GET /api/schedules`: every `onSchedule` handler of a default branch, with its next run, soonest first. */
export const handler = apiHandler(async () => json(200, await scheduleList()));
