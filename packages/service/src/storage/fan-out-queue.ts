import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { fanOutKeys, fanOutPageSize } from "@nimbus/core";
import { sqs } from "../platform/aws-clients.ts";
import { queueUrl } from "../platform/linked-resources.ts";
import type { FanOutMessage } from "./queue-messages.ts";
import { hexDigest } from "../platform/hex-digest.ts";

/** Items of one fan-out page: `NIMBUS_FAN_OUT_PAGE`, else core's default (read per call, as the timing knobs are). */
export const fanOutPage = (): number => fanOutPageSize(process.env.NIMBUS_FAN_OUT_PAGE);

/**
 * Puts the next page of a settle or a cancel on the FanOut queue (docs/architecture.md,
 * "Fan-out in pages"). Keyed by core `fanOutKeys`: a target's pages in one message group, and
 * the same page sent twice within SQS's 5-minute window delivered once.
 */
export async function sendFanOut(message: FanOutMessage): Promise<void> {
  const { group, dedup } = fanOutKeys(message);
  await sqs().send(
    new SendMessageCommand({
      QueueUrl: queueUrl("FanOut"),
      MessageBody: JSON.stringify(message),
      MessageGroupId: hexDigest(group),
      MessageDeduplicationId: hexDigest(dedup),
    }),
  );
}
