import { ApiGatewayManagementApiClient } from "@aws-sdk/client-apigatewaymanagementapi";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { managementEndpoint } from "./linked-resources.ts";

// Created on first use and kept for the life of the Lambda container (or local process).
let documentClient: DynamoDBDocumentClient | undefined;
let managementClient: ApiGatewayManagementApiClient | undefined;
let sqsClient: SQSClient | undefined;
let s3Client: S3Client | undefined;

export function dynamo(): DynamoDBDocumentClient {
  documentClient ??= DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return documentClient;
}

export function gatewayManagement(): ApiGatewayManagementApiClient {
  managementClient ??= new ApiGatewayManagementApiClient({ endpoint: managementEndpoint() });
  return managementClient;
}

export function sqs(): SQSClient {
  // Send to the configured endpoint, not each queue URL's host: fauxqs names its queues
  // `sqs.<region>.localhost`, which need not resolve; in AWS the two are the same host.
  sqsClient ??= new SQSClient({ useQueueUrlAsEndpoint: false });
  return sqsClient;
}

export function s3(): S3Client {
  // Checksums only where the service asks for them: the SDK would otherwise sign a CRC32 of an
  // empty body into presigned PUT URLs, which the agent's upload could never match.
  s3Client ??= new S3Client({ requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" });
  return s3Client;
}
