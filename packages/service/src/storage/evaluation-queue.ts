import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { sqs } from "../platform/aws-clients.ts";
import { queueUrl } from "../platform/linked-resources.ts";
import type { EvaluationMessage } from "./queue-messages.ts";

export const EVALUATION_QUEUE = "Evaluations" as const;
export const evaluationQueueUrl = () => queueUrl(EVALUATION_QUEUE);

/**
 * Queues a job's evaluation. The group is the job id; the deduplication id is the job id and
 * the try, so a second send of one try within SQS's 5-minute window is dropped while a retry
 * (the evaluating agent vanished) goes through — and so does the sweeper's re-send of a lost
 * message (`resend`: when it was sent again).
 */
export async function enqueueEvaluation(jobId: string, retry = 0, resend?: number): Promise<void> {
  const body: EvaluationMessage = { jobId };
  await sqs().send(
    new SendMessageCommand({
      QueueUrl: evaluationQueueUrl(),
      MessageBody: JSON.stringify(body),
      MessageGroupId: jobId,
      MessageDeduplicationId: `${retry ? `${jobId}.${retry}` : jobId}${resend ? `.r${resend}` : ""}`,
    }),
  );
}
