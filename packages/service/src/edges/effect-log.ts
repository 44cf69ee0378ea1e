/** `GET /api/jobs/{id}/effects/{attribute}/log` (docs/effects.md): an effect's latest run, as a build's log is read. */
import type { EffectLogView } from "@nimbus/protocol";
import { effectLogKey } from "../flow/tasks/effect.ts";
import { badRequest, notFound } from "../platform/errors.ts";
import { jobEffects } from "../storage/effects.ts";
import { latestLog } from "./log-pages.ts";

/** `attribute` is the effect's path joined with dots, e.g. `effects.deploy`. */
export async function effectLog(jobId: string, attribute: string): Promise<EffectLogView> {
  if (!attribute || attribute.length > 2048) throw badRequest("name the effect by its attribute path, e.g. /api/jobs/<id>/effects/effects.deploy/log");
  const effect = (await jobEffects(jobId)).find((e) => e.path.join(".") === attribute);
  if (!effect) throw notFound(`job ${jobId} has no effect ${attribute} — \`nimbus job ${jobId}\` lists its effects`);
  return { attribute: effect.path, status: effect.status, ...(await latestLog(effectLogKey(effect.jobId, effect.attribute))) };
}
