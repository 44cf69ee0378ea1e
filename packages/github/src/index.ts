export {
  DEFAULT_API_BASE_URL,
  GITHUB_SECRET_NAMES,
  GithubAppConfig,
  GithubConfig,
  GithubConfigError,
  githubConfigFrom,
  GithubOffConfig,
  GithubTokenConfig,
  type GithubEnvironment,
  type GithubSecrets,
} from "./config.ts";
export { createGithubClient, NoAppError, NotInstalledError, RestOctokit, type ClientOptions, type GithubClient, type RepositoryRef } from "./client.ts";
export { CLONE_MIN_VALIDITY_MS, CLONE_PERMISSIONS, CloneCredential, mintCloneCredential } from "./clone-credential.ts";
export { TokenCache, tokenKey, type CachedToken, type Permission, type Permissions } from "./token-cache.ts";
export {
  checkName,
  CommitSha,
  isTerminal,
  JobReport,
  ReportedAttributeError,
  ReportedFailure,
  ReportStatus,
  RepositoryName,
  splitRepository,
  TERMINAL_STATUSES,
  type JobReportInput,
} from "./job-report.ts";
export { jobUrl, logUrl } from "./links.ts";
export {
  APPROVE_ACTION,
  checkRunFields,
  checkRunStatus,
  createCheckRunRequest,
  DEFAULT_SUMMARY_LIMITS,
  derivationName,
  MAX_SUMMARY_CHARS,
  summary,
  updateCheckRunRequest,
  type CheckRunConclusion,
  type CheckRunFields,
  type CheckRunStatus,
  type CreateCheckRunRequest,
  type SummaryLimits,
  type UpdateCheckRunRequest,
} from "./check-run.ts";
export { commitState, commitStatusRequest, MAX_STATUS_DESCRIPTION, type CommitState, type CommitStatusRequest } from "./commit-status.ts";
export { headline } from "./report-text.ts";
export {
  CheckRunPayload,
  CloneUrl,
  InstallationPayload,
  PullRequestPayload,
  PushPayload,
  WebhookRepository,
} from "./webhook-events.ts";
export {
  classifyWebhook,
  DEFAULT_APPROVAL_LABEL,
  DEFAULT_WEBHOOK_POLICY,
  WebhookPayloadError,
  webhookPolicy,
  type InstallationChange,
  type JobStart,
  type WebhookAction,
  type WebhookPolicy,
} from "./webhook-actions.ts";
export {
  decideApproval,
  mayApprove,
  startsWithoutApproval,
  type ApprovalDecision,
  type ForkApproval,
  type HeldJob,
  type RepositoryPermission,
} from "./fork-approval.ts";
export { PERMISSION_LOOKUP_PERMISSIONS, repositoryPermission } from "./repository-permission.ts";
export { classifyFailure, transientBackoffMs, type FailedRequest, type FailureClass } from "./request-failures.ts";
export {
  afterSend,
  decideReport,
  DEFAULT_REPORT_SETTINGS,
  earliestSend,
  INITIAL_REPORT_STATE,
  ReportState,
  reportRequest,
  updateInterval,
  type ReportDecision,
  type ReportMode,
  type ReportRequest,
  type ReportSettings,
  type SendOutcome,
} from "./report-decision.ts";
export { createReporter, deliverReport, REPORT_PERMISSIONS, type Delivery, type Reporter } from "./reporter.ts";
export { jobReportFromView, type ReportOptions } from "./job-report-from-view.ts";
