/**
 * What builds cost in AWS, from what the bench measured: DynamoDB capacity units, SQS FIFO
 * requests, API Gateway WebSocket messages and connection minutes, Lambda invocations and
 * GB-seconds. Pure: prices and usage in, dollars out (docs/scale.md explains the assumptions).
 */

/** AWS's published on-demand prices, us-east-1, in USD (first tier; free tiers left out). */
export const AWS_PRICES = {
  region: "us-east-1",
  /** When these figures were taken from aws.amazon.com/<service>/pricing (by hand; the bench does not fetch them). */
  asOf: "2026-11-29",
  dynamodbWriteRequestUnitPerMillion: 0.625,
  dynamodbReadRequestUnitPerMillion: 0.125,
  sqsFifoRequestPerMillion: 0.5,
  /** Per million messages (each 32 KB or part of it counts as one), first billion a month. */
  apiGatewayWebSocketMessagePerMillion: 1.0,
  apiGatewayWebSocketConnectionMinutePerMillion: 0.25,
  lambdaRequestPerMillion: 0.2,
  /** arm64 (sst.config.ts deploys arm64), first 7.5 billion GB-s a month. */
  lambdaArmGbSecond: 0.0000133334,
} as const;

export type Prices = typeof AWS_PRICES;

/** The usage of some number of builds, as measured (or assumed where stated). */
export interface Usage {
  builds: number;
  dynamodbReadUnits: number;
  dynamodbWriteUnits: number;
  sqsRequests: number;
  /** Messages the service sent to agents (PostToConnection) and agents sent to it (one per frame). */
  gatewayMessagesOut: number;
  gatewayMessagesIn: number;
  gatewayConnectionMinutes: number;
  lambdaInvocations: number;
  /** Billed duration of all those invocations together, ms. */
  lambdaBilledMs: number;
  lambdaMemoryMb: number;
}

export interface Cost {
  dynamodbReads: number;
  dynamodbWrites: number;
  sqs: number;
  gatewayMessages: number;
  gatewayConnectionMinutes: number;
  lambdaRequests: number;
  lambdaDuration: number;
  total: number;
}

class CostModelError extends Error {
  override name = "CostModelError";
}

/** Dollars for `per` builds at the usage's rate (e.g. per 1,000 builds). */
export function costPer(per: number, usage: Usage, prices: Prices = AWS_PRICES): Cost {
  if (!(usage.builds > 0)) throw new CostModelError(`the usage must cover at least one build, not ${usage.builds}`);
  for (const [name, value] of Object.entries(usage)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw new CostModelError(`usage.${name} must be a non-negative number, not ${String(value)}`);
  }
  const scale = per / usage.builds;
  const million = (count: number, price: number) => (count * scale * price) / 1e6;
  const gbSeconds = (usage.lambdaBilledMs / 1000) * (usage.lambdaMemoryMb / 1024);
  const cost = {
    dynamodbReads: million(usage.dynamodbReadUnits, prices.dynamodbReadRequestUnitPerMillion),
    dynamodbWrites: million(usage.dynamodbWriteUnits, prices.dynamodbWriteRequestUnitPerMillion),
    sqs: million(usage.sqsRequests, prices.sqsFifoRequestPerMillion),
    gatewayMessages: million(usage.gatewayMessagesOut + usage.gatewayMessagesIn, prices.apiGatewayWebSocketMessagePerMillion),
    gatewayConnectionMinutes: million(usage.gatewayConnectionMinutes, prices.apiGatewayWebSocketConnectionMinutePerMillion),
    lambdaRequests: million(usage.lambdaInvocations, prices.lambdaRequestPerMillion),
    lambdaDuration: gbSeconds * scale * prices.lambdaArmGbSecond,
  };
  return { ...cost, total: Object.values(cost).reduce((a, b) => a + b, 0) };
}

/** A cost with every figure rounded to `digits` decimals (dollars are small per 1,000 builds). */
export function roundCost(cost: Cost, digits = 6): Cost {
  const r = (x: number) => Math.round(x * 10 ** digits) / 10 ** digits;
  return Object.fromEntries(Object.entries(cost).map(([k, v]) => [k, r(v)])) as unknown as Cost;
}
