/**
 * A job run's measured usage in the cost model's terms (bench/cost-model.ts): capacity units,
 * SQS requests, gateway messages both ways, connection minutes, Lambda invocations and their
 * mean duration. Pure.
 */
import type { Usage } from "./cost-model.ts";
import type { CounterReport } from "./request-counter.ts";

/** sst.config.ts gives every function 512 MB. */
export const LAMBDA_MEMORY_MB = 512;

/**
 * Assumed, not measured: in AWS a handler's duration is mostly its AWS calls, one after the
 * other. Locally each call goes to an emulator on a shared machine, so local wall time says
 * little about AWS's; the model bills each invocation this overhead plus this much per call
 * (a typical in-region DynamoDB/SQS round trip from Lambda).
 */
export const ASSUMED_LAMBDA_OVERHEAD_MS = 10;
export const ASSUMED_AWS_CALL_MS = 8;

/** Handlers that run as Lambda invocations in AWS (the JSON API the bench polls is left out, as in the counts). */
const isServiceInvocation = (source: string) => !source.startsWith("api/");
/** One agent frame = one inbound WebSocket message; $connect and $disconnect are not messages. */
const isAgentFrame = (source: string) => source.startsWith("socket/default");

export function usageOf(run: { builds: number; requests: CounterReport; connectionSeconds: number }): Usage {
  const invocations = Object.entries(run.requests.invocations).filter(([source]) => isServiceInvocation(source));
  return {
    builds: run.builds,
    dynamodbReadUnits: run.requests.capacity.read,
    dynamodbWriteUnits: run.requests.capacity.write,
    sqsRequests: run.requests.counted.sqs,
    gatewayMessagesOut: run.requests.counted.gateway,
    gatewayMessagesIn: invocations.filter(([source]) => isAgentFrame(source)).reduce((sum, [, n]) => sum + n, 0),
    gatewayConnectionMinutes: run.connectionSeconds / 60,
    lambdaInvocations: invocations.reduce((sum, [, n]) => sum + n, 0),
    lambdaBilledMs:
      invocations.reduce((sum, [, n]) => sum + n, 0) * ASSUMED_LAMBDA_OVERHEAD_MS + run.requests.counted.total * ASSUMED_AWS_CALL_MS,
    lambdaMemoryMb: LAMBDA_MEMORY_MB,
  };
}
