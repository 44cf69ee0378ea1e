import { handleFanOut } from "@nimbus/service";
import type { SQSEvent } from "aws-lambda";

/** The FanOut queue's consumer: the next page of a settle's dependents or of a cancelled job's derivations. */
export const handler = (event: SQSEvent) => handleFanOut(event);
