export {
  startLocalStack,
  LocalStackError,
  AGENT_SOCKET_PATH,
  MANAGEMENT_API_PATH,
  DEFAULT_PORT,
  type LocalStack,
  type LocalStackOptions,
  type LocalGatewayControl,
} from "./stack.ts";
export {
  importHandlerFrom,
  parseHandlerSpec,
  repoRoot,
  HandlerResolutionError,
  type HandlerResolver,
  type LambdaHandler,
} from "./handlers.ts";
export { TableSchemaError } from "./dynamodb.ts";
export { loadOrCreateSecrets, secretsPath, SecretsFileError } from "./secrets.ts";
export { localTableName, LOCAL_APP, LOCAL_STAGE, LOCAL_REGION } from "./environment.ts";
export { PortInUseError, MAX_HTTP_BODY_BYTES } from "./http-server.ts";
export { ConnectionGoneError } from "./socket-gateway.ts";
export { InvalidRouteError, InvalidHandlerResultError } from "./http-events.ts";
export { HandlerDeathError, FaultPlanError, type FaultPlan, type FaultCounts } from "./faults.ts";
export { seededRandom } from "./seeded-random.ts";
