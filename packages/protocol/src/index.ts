/**
 * Every schema of the wire and the API. Modules import zod as `import * as z`, not `import { z }`:
 * the dashboard bundles these for the browser, and only the namespace import lets esbuild drop
 * the parts of zod nothing uses (`{ z }` keeps all its locales, 300 KB more).
 */
export { NIMBUS_VERSION, PROTOCOL_VERSION } from "./version.ts";
export {
  CONNECTION_LIFETIME_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  IDLE_TIMEOUT_MS,
  LOG_BATCHES_KEPT,
  MAX_FRAME_BYTES,
  MAX_LOG_BATCHES,
  MAX_MESSAGE_BYTES,
} from "./limits.ts";
export { AgentInfo, CacheInfo, FeatureName, SystemName } from "./agent-info.ts";
export {
  AGENT_MESSAGE_TYPES,
  AgentInfoChanged,
  AgentMessage,
  ErrorCode,
  ErrorMessage,
  Goodbye,
  Heartbeat,
  HeartbeatAck,
  Hello,
  Pause,
  SERVICE_MESSAGE_TYPES,
  ServiceMessage,
  SessionCredential,
  Welcome,
} from "./messages.ts";
export {
  AgentList,
  AgentView,
  ApiError,
  CreateTokenRequest,
  CreateTokenResponse,
  ServiceInfo,
  TokenList,
  TokenName,
  TokenView,
} from "./api.ts";
export { decodeAgentMessage } from "./decode.ts";
export type { Decoded } from "./decode.ts";
export { AttributePath, DrvPath, StorePath } from "./nix-names.ts";
export {
  AttributeErrorEvent,
  AttributeEvent,
  AttributeType,
  BuildLog,
  BuildResult,
  BuildTask,
  CancelTask,
  CloneCredential,
  DerivationEvent,
  EvaluateTask,
  EvaluationDone,
  EvaluationEvent,
  EvaluationEvents,
  RequestWork,
  ResultAck,
  StreamAck,
  TaskId,
} from "./tasks.ts";
export {
  AttributeView,
  BuilderView,
  DerivationLog,
  DerivationPage,
  DerivationStatus,
  EvaluationStatus,
  FailureView,
  JobDerivationView,
  JobList,
  JobStatus,
  JobSummary,
  JobView,
  Trigger,
  WebhookAccepted,
  WebhookActed,
  WebhookIgnored,
} from "./jobs-api.ts";
export {
  CacheName,
  CacheReport,
  Need,
  Source,
  StoreId,
  cacheProblem,
  cacheSource,
  normalizeSubstituter,
  storeSource,
  substituterSource,
} from "./sources.ts";
export {
  BUILTIN_CACHE_NAME,
  CACHE_COMPLETE_BATCH,
  CACHE_UPLOAD_BATCH,
  CacheAccess,
  CacheInfoView,
  CacheTokenList,
  CacheTokenView,
  CacheUploadComplete,
  CacheUploadRequest,
  CacheUploadResult,
  CacheUploadUrls,
  CreateCacheTokenRequest,
  CreateCacheTokenResponse,
  NarCompression,
  NixSha256,
  UploadFile,
  UploadSlot,
  UploadVerdict,
  UploadedPath,
  WelcomeCache,
} from "./builtin-cache.ts";
export {
  AgentWithTasks,
  AgentsWithTasks,
  AttemptView,
  AttributePage,
  DashboardSession,
  DerivationDetail,
  HashPrefix,
  JobStatusView,
  LogPage,
  RunningTask,
  SignInCode,
  SignInRequest,
  StatusMove,
} from "./dashboard-api.ts";
