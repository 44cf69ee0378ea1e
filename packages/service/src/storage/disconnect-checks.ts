import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { sqs } from "../platform/aws-clients.ts";
import { queueUrl } from "../platform/linked-resources.ts";
import { MAX_DELAY_MS } from "../platform/timing.ts";
import type { DisconnectCheckMessage } from "./queue-messages.ts";

/**
 * Schedules the check of a session whose connection closed, `delayMs` from now (SQS delays
 * by whole seconds, at most 15 minutes): its consumer ends the session if the agent did not
 * come back meanwhile (flow/disconnect-check.ts).
 */
export async function scheduleDisconnectCheck(check: DisconnectCheckMessage, delayMs: number): Promise<void> {
  await sqs().send(
    new SendMessageCommand({
      QueueUrl: queueUrl("DisconnectChecks"),
      MessageBody: JSON.stringify(check),
      DelaySeconds: Math.ceil(Math.min(Math.max(delayMs, 0), MAX_DELAY_MS) / 1000),
    }),
  );
}
