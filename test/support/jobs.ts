/** Jobs as a user starts and watches them: `nimbus trigger`, then the API until the job ends. */
import assert from "node:assert/strict";
import { JobView } from "@nimbus/protocol";
import { runCli } from "./agent-process.ts";
import { eventually, type TestStack } from "./stack.ts";

/** A signed push for the repository at `path` (`nimbus trigger path ...args`); the job's id. */
export async function triggerJob(env: Record<string, string>, path: string, ...args: string[]): Promise<string> {
  const result = await runCli(["trigger", path, ...args], env);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim();
}

/** The job once it succeeded, failed or was cancelled; `said` (what the agents printed) is read if it never does. */
export function jobFinished(stack: TestStack, jobId: string, said: () => string, timeoutMs = 120_000): Promise<JobView> {
  return eventually(
    async () => {
      const { status, body } = await stack.api("GET", `/api/jobs/${jobId}`);
      if (status !== 200) return undefined;
      const job = JobView.parse(body);
      return ["succeeded", "failed", "cancelled"].includes(job.status) ? job : undefined;
    },
    () => `job ${jobId} to finish (agents said: ${said()})`,
    timeoutMs,
  );
}
