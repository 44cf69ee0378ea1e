/**
 * Queues whose messages SQS delivers to a handler (platform/resource-specs.ts `consumer`):
 * each record is parsed and handled on its own; those that failed are answered as
 * `batchItemFailures`, so only they come back. A body that does not parse can never succeed:
 * it is logged and dropped.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { wakeIdleAgents } from "../flow/dispatch.ts";
import { checkDisconnectedSession } from "../flow/disconnect-check.ts";
import { continueFanOut } from "../flow/fan-out.ts";
import { reportChangedJobs } from "../flow/job-reports.ts";
import { WorkNotes } from "../flow/new-work.ts";
import { countingMoves } from "../storage/job-counts.ts";
import { DisconnectCheckMessage, FanOutMessage, MalformedMessageError, parseMessageBody } from "../storage/queue-messages.ts";

/** `DisconnectChecks`: sessions whose disconnect grace is over. */
export async function handleDisconnectChecks(event: SQSEvent): Promise<SQSBatchResponse> {
  const work = new WorkNotes();
  const failed: string[] = [];
  // The job counts the batch's moves change are written once per job, after all of it.
  await countingMoves(async () => {
    for (const record of event.Records) {
      try {
        await checkDisconnectedSession(parseRecord(record), work);
      } catch (error) {
        if (error instanceof MalformedMessageError) console.error(error.message);
        else {
          console.error(`disconnect check ${record.messageId} failed:`, error);
          failed.push(record.messageId);
        }
      }
    }
    await wakeIdleAgents(work);
  });
  // A build whose retries ran out with its agent fails, and its job may with it.
  await reportChangedJobs(work);
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}

/**
 * `FanOut`: the next page of a settle or a cancel (flow/fan-out.ts). A FIFO queue: once a
 * record fails, it and the ones after it are answered as failures, so a group's pages keep
 * their order.
 */
export async function handleFanOut(event: SQSEvent): Promise<SQSBatchResponse> {
  const work = new WorkNotes();
  const failed: string[] = [];
  await countingMoves(async () => {
    for (const record of event.Records) {
      if (failed.length > 0) {
        failed.push(record.messageId);
        continue;
      }
      try {
        await continueFanOut(parseMessageBody("FanOut", { MessageId: record.messageId, Body: record.body }, FanOutMessage), work);
      } catch (error) {
        if (error instanceof MalformedMessageError) console.error(error.message);
        else {
          console.error(`fan-out page ${record.messageId} failed:`, error);
          failed.push(record.messageId);
        }
      }
    }
    await wakeIdleAgents(work);
  });
  // A settle's page may finish jobs.
  await reportChangedJobs(work);
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}

const parseRecord = (record: SQSRecord) =>
  parseMessageBody("DisconnectChecks", { MessageId: record.messageId, Body: record.body }, DisconnectCheckMessage);
