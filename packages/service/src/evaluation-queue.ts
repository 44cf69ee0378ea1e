import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { z } from "zod";
import { sqs } from "./aws-clients.ts";
import { queueUrl } from "./resource.ts";

/** The body of an Evaluations queue message: the job whose commit waits to be evaluated. */
export const EvaluationMessage = z.strictObject({ jobId: z.string().min(1).max(64) });
export type EvaluationMessage = z.infer<typeof EvaluationMessage>;

/**
 * Queues a job's evaluation. The group is the job id; the deduplication id is the job id and
 * the try, so a second send of one try within SQS's 5-minute window is dropped while a retry
 * (the evaluating agent vanished) goes through.
 */
export async function enqueueEvaluation(jobId: string, retry = 0): Promise<void> {
  const body: EvaluationMessage = { jobId };
  await sqs().send(
    new SendMessageCommand({
      QueueUrl: queueUrl("Evaluations"),
      MessageBody: JSON.stringify(body),
      MessageGroupId: jobId,
      MessageDeduplicationId: retry ? `${jobId}.${retry}` : jobId,
    }),
  );
}
