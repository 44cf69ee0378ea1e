import { ApiGatewayManagementApiClient } from "@aws-sdk/client-apigatewaymanagementapi";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { managementEndpoint } from "./linked-resources.ts";

// Created on first use and kept for the life of the Lambda container (or local process).
let documentClient: DynamoDBDocumentClient | undefined;
let managementClient: ApiGatewayManagementApiClient | undefined;
let sqsClient: SQSClient | undefined;

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
