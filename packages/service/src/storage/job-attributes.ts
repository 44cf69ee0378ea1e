import { JobAttributeItem } from "./items.ts";
import { JobAttributes } from "./tables.ts";

export async function putJobAttribute(item: JobAttributeItem): Promise<void> {
  await JobAttributes.put(item);
}

/** How many of a job's attributes failed to evaluate (read consistently, only the error field). */
export async function countAttributeErrors(jobId: string): Promise<number> {
  const attributes = await JobAttributes.query(
    {
      KeyConditionExpression: "jobId = :job",
      ExpressionAttributeValues: { ":job": jobId },
      ConsistentRead: true,
      ProjectionExpression: "#error",
      ExpressionAttributeNames: { "#error": "error" },
    },
    JobAttributeItem.pick({ error: true }),
  );
  return attributes.filter((a) => a.error).length;
}
