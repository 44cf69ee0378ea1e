import { apiHandler, effectLog, json } from "@nimbus/service";

/** `GET /api/jobs/{id}/effects/{attribute}/log`: an effect's latest run's log; `{attribute}` is its dotted path, e.g. `effects.deploy`. */
export const handler = apiHandler(async (event) =>
  json(200, await effectLog(event.pathParameters?.id ?? "", decoded(event.pathParameters?.attribute ?? ""))),
);

/** A name with `%` in it, as sent (an encoded one is decoded once). */
function decoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
