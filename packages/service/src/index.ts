/**
 * What the Lambda handlers (functions/), the tests and the local runtime use of the service.
 * The layers behind it are described in docs/architecture.md: platform/ (resources, clients,
 * knobs), storage/ (tables, item schemas, queues, the agents' socket), flow/ (jobs, dispatch,
 * settling, sessions, the sweeper; the task kinds in flow/tasks/) and edges/ (the webhook,
 * agent frames, the JSON API). Plain data and types for the local runtime and sst.config.ts
 * are also subpath exports (`@nimbus/service/resource-specs`, `…/socket-events`).
 */

// ---- edges: what handlers call ----------------------------------------------------------
export { handleAgentFrame } from "./edges/agent-messages.ts";
export { handleDisconnectChecks, handleFanOut } from "./edges/queue-consumers.ts";
export { receiveGithubWebhook, MAX_WEBHOOK_BYTES } from "./edges/webhook.ts";
export { apiHandler, json, parseBody, requireAdmin, requireCaller, requireJsonBody, type HttpEvent, type HttpResult } from "./edges/http.ts";
export { parseLimit, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "./edges/paging.ts";
export { listJobs, getJobView, getJobSummary, parseJobFilter, MAX_VIEW_ATTRIBUTES, MAX_VIEW_FAILURES, type JobFilter } from "./edges/job-views.ts";
export { scheduleList } from "./edges/schedule-views.ts";
export { effectLog } from "./edges/effect-log.ts";
export { listJobDerivations, parseDerivationStatus, parseDrvParameter, parseHashPrefix } from "./edges/derivation-views.ts";
export { logPage, parseLogQuery, MAX_LOG_LINES, MAX_LOG_CHARS, type LogQuery } from "./edges/log-pages.ts";
export { derivationDetail, MAX_DETAIL_JOBS } from "./edges/derivation-detail.ts";
export { listJobAttributes, parseAttributeQuery, attributeKeyPrefix } from "./edges/attribute-pages.ts";
export {
  createSignInCode,
  signIn,
  signOut,
  sessionOf,
  sessionView,
  checkOrigin,
  checkCsrf,
  overHttps,
  SESSION_COOKIE,
  CSRF_HEADER,
  CODE_TTL_MS,
  SESSION_TTL_MS,
} from "./edges/dashboard-sessions.ts";
export { cancelJob, rerunJob } from "./edges/job-commands.ts";
export { listAgents } from "./edges/agent-views.ts";
export { createToken, listTokens, revokeToken, verifyToken, type TokenCheck } from "./edges/tokens.ts";
export { cacheHandler, serveMissing, serveNar, serveNarinfo, serveNixCacheInfo } from "./edges/cache-http.ts";
export { builtinCacheUrl, cacheInfo, createCacheToken, listCacheTokenViews, revokeCacheTokenById } from "./edges/cache-api.ts";

// ---- flow ----------------------------------------------------------------------------
export { sweep, type SweepReport, type SweepOptions } from "./flow/sweeper.ts";
export { collectCache, type CollectReport } from "./flow/cache-collect.ts";
export { cacheCaller, type CacheCaller } from "./flow/cache-access.ts";
export { newJobId, JOB_ID_PATTERN } from "./flow/job-ids.ts";

// ---- storage -------------------------------------------------------------------------
export { openConnection, forgetConnection } from "./storage/connections.ts";
export { sendToAgent, disconnectToken } from "./storage/agent-socket.ts";
export { attributeKey, jobStatusKey, logChunk, repositoryRefKey, SHARD } from "./storage/keys.ts";
export { countingMoves, exactCountFields } from "./storage/job-counts.ts";
export { StoredItemError } from "./storage/table.ts";
export type {
  BuildLogItem,
  BuildQueueItem,
  ConnectionItem,
  DashboardSessionItem,
  DeliveryItem,
  DerivationItem,
  EdgeItem,
  JobAttributeItem,
  JobDerivationItem,
  JobItem,
  TokenItem,
} from "./storage/items.ts";
export type { SessionItem } from "./flow/sessions.ts";

// ---- platform ------------------------------------------------------------------------
export { agentSocketUrl } from "./platform/linked-resources.ts";
export { localResourceName, type TableName } from "./platform/resource-specs.ts";
export { NimbusError, badRequest, notFound, conflict, unauthorized } from "./platform/errors.ts";
export { bearerToken } from "./platform/token-secret.ts";
export { timing, TIMING_ENV, type Timing } from "./platform/timing.ts";
export { CACHE_ENV, cacheSettings, type CacheSettings } from "./platform/cache-settings.ts";
export type { SocketEvent, SocketResult, SocketHandler, SocketRequestContext } from "./platform/socket-events.ts";
