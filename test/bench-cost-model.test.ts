import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AWS_PRICES, costPer, roundCost, type Usage } from "../bench/cost-model.ts";
import type { CounterReport } from "../bench/request-counter.ts";
import { ASSUMED_AWS_CALL_MS, ASSUMED_LAMBDA_OVERHEAD_MS, LAMBDA_MEMORY_MB, usageOf } from "../bench/usage.ts";

const oneMillionOfEach: Usage = {
  builds: 1_000_000,
  dynamodbReadUnits: 1_000_000,
  dynamodbWriteUnits: 1_000_000,
  sqsRequests: 1_000_000,
  gatewayMessagesOut: 500_000,
  gatewayMessagesIn: 500_000,
  gatewayConnectionMinutes: 1_000_000,
  lambdaInvocations: 1_000_000,
  lambdaBilledMs: 1_000_000,
  lambdaMemoryMb: 1024,
};

describe("bench cost model", () => {
  it("bills a million of each unit at the listed price", () => {
    const cost = costPer(1_000_000, oneMillionOfEach);
    assert.equal(cost.dynamodbReads, AWS_PRICES.dynamodbReadRequestUnitPerMillion);
    assert.equal(cost.dynamodbWrites, AWS_PRICES.dynamodbWriteRequestUnitPerMillion);
    assert.equal(cost.sqs, AWS_PRICES.sqsFifoRequestPerMillion);
    assert.equal(cost.gatewayMessages, AWS_PRICES.apiGatewayWebSocketMessagePerMillion, "messages both ways are billed");
    assert.equal(cost.gatewayConnectionMinutes, AWS_PRICES.apiGatewayWebSocketConnectionMinutePerMillion);
    assert.equal(cost.lambdaRequests, AWS_PRICES.lambdaRequestPerMillion);
    // 1,000,000 ms at 1 GB = 1,000 GB-s.
    assert.ok(Math.abs(cost.lambdaDuration - 1000 * AWS_PRICES.lambdaArmGbSecond) < 1e-12);
    const parts = Object.entries(cost).filter(([k]) => k !== "total").reduce((sum, [, v]) => sum + v, 0);
    assert.ok(Math.abs(cost.total - parts) < 1e-12, "the total is the sum of its parts");
  });

  it("scales linearly with the number of builds asked for", () => {
    const per1000 = costPer(1000, oneMillionOfEach);
    const perMillion = costPer(1_000_000, oneMillionOfEach);
    assert.ok(Math.abs(perMillion.total - 1000 * per1000.total) < 1e-9);
  });

  it("halves the duration cost at half the memory", () => {
    const full = costPer(1000, oneMillionOfEach);
    const half = costPer(1000, { ...oneMillionOfEach, lambdaMemoryMb: 512 });
    assert.ok(Math.abs(half.lambdaDuration - full.lambdaDuration / 2) < 1e-15);
    assert.equal(half.lambdaRequests, full.lambdaRequests);
  });

  it("refuses usage without builds or with a negative or missing figure, naming it", () => {
    assert.throws(() => costPer(1000, { ...oneMillionOfEach, builds: 0 }), /at least one build/);
    assert.throws(() => costPer(1000, { ...oneMillionOfEach, sqsRequests: -1 }), /usage\.sqsRequests must be a non-negative number/);
    assert.throws(() => costPer(1000, { ...oneMillionOfEach, lambdaBilledMs: Number.NaN }), /usage\.lambdaBilledMs/);
  });

  it("lists the region and the date of its prices", () => {
    assert.equal(AWS_PRICES.region, "us-east-1");
    assert.match(AWS_PRICES.asOf, /^\d{4}-\d{2}-\d{2}$/);
  });

  it("rounds every figure", () => {
    const rounded = roundCost({ ...costPer(1, oneMillionOfEach), sqs: 0.1234567891 }, 4);
    assert.equal(rounded.sqs, 0.1235);
  });
});

describe("bench usage of a run", () => {
  const requests = {
    counted: { dynamodb: 30, sqs: 8, gateway: 2, total: 40 },
    excluded: { dynamodb: 5, sqs: 0, gateway: 0, total: 5 },
    capacity: { read: 12.5, write: 20 },
    handlerMs: { count: 4, mean: 100, p50: 100, p95: 100, p99: 100, max: 100, total: 400 },
    invocations: { "socket/default: build-result": 2, "socket/default: evaluation-events": 1, "webhooks/github": 1, "api/jobs-get": 50 },
    bySource: [],
    byOperation: [],
    bySourceOperation: [],
    errors: [],
    perInvocation: [],
  } satisfies CounterReport;

  it("counts agent frames as inbound messages and leaves the bench's own API calls out", () => {
    const usage = usageOf({ builds: 2, requests, connectionSeconds: 120 });
    assert.equal(usage.gatewayMessagesIn, 3, "two build-results and one evaluation-events frame");
    assert.equal(usage.gatewayMessagesOut, 2);
    assert.equal(usage.lambdaInvocations, 4, "the 50 API polls are not the service's work");
    assert.equal(usage.gatewayConnectionMinutes, 2);
    assert.equal(usage.dynamodbReadUnits, 12.5);
    assert.equal(usage.dynamodbWriteUnits, 20);
    assert.equal(usage.lambdaBilledMs, 4 * ASSUMED_LAMBDA_OVERHEAD_MS + 40 * ASSUMED_AWS_CALL_MS);
    assert.equal(usage.lambdaMemoryMb, LAMBDA_MEMORY_MB);
  });
});
