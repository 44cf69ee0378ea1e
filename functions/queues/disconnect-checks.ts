import { handleDisconnectChecks } from "@nimbus/service";
import type { SQSEvent } from "aws-lambda";

/** The DisconnectChecks queue's consumer: ends sessions whose agent did not come back within the disconnect grace. */
export const handler = (event: SQSEvent) => handleDisconnectChecks(event);
