/**
 * Answers of the JSON API endpoints the dashboard needs beyond the CLI's (docs/dashboard-api.md
 * has each endpoint's method, query, paging, cost and auth). Where an existing answer grows,
 * the new fields are optional, so the dashboard reads a server of either release.
 */
import * as z from "zod";
import { AgentView } from "./api.ts";
import { AttributeView, DerivationLog, DerivationStatus, JobDerivationView, JobView } from "./jobs-api.ts";
import { DrvPath } from "./nix-names.ts";

/**
 * A prefix of a Nix store hash (Nix's base32 alphabet: digits and letters but e, o, t, u). Store
 * hashes are uniform, so a job's derivations split into hash ranges of predictable size: the
 * dashboard reads any part of a 100,000-row list by its range, without paging from the start.
 */
export const HashPrefix = z.string().regex(/^[0-9a-df-np-sv-z]{1,32}$/, "a prefix of a Nix store hash (0-9, a-z but e o t u)");
export type HashPrefix = z.infer<typeof HashPrefix>;

/**
 * `GET /api/jobs/{id}/summary`: what the job page polls every two seconds — the job and its
 * counts per status, without the attribute and failure lists (which have their own pages).
 */
export const JobStatusView = JobView.omit({ attributes: true, failures: true });
export type JobStatusView = z.infer<typeof JobStatusView>;

/** `GET /api/jobs/{id}/attributes?prefix=&errors=only&cursor=&limit=`: in attribute path order. */
export const AttributePage = z.strictObject({
  attributes: z.array(AttributeView),
  cursor: z.string().optional(),
});
export type AttributePage = z.infer<typeof AttributePage>;

/** One status move of a derivation, as `GET /api/derivations/{drv}` lists them. */
export const StatusMove = z.strictObject({
  at: z.iso.datetime(),
  status: DerivationStatus,
  attempt: z.number().int().min(1),
  /** The agent's hostname, for moves an agent caused (building, a result). */
  agent: z.string().optional(),
  /** One line: why (a failure's reason, "retry after an exceptional result", "cancelled with job …"). */
  reason: z.string().optional(),
});
export type StatusMove = z.infer<typeof StatusMove>;

/** One build attempt: who, when, how it ended. */
export const AttemptView = z.strictObject({
  attempt: z.number().int().min(1),
  /** The hostname of the agent that built it. */
  agent: z.string().optional(),
  startedAt: z.iso.datetime().optional(),
  finishedAt: z.iso.datetime().optional(),
  /** Absent while it builds. */
  outcome: z.enum(["succeeded", "failed", "exceptional", "cancelled", "lost"]).optional(),
  exitCode: z.number().int().optional(),
  reason: z.string().optional(),
});
export type AttemptView = z.infer<typeof AttemptView>;

/**
 * `GET /api/derivations/{drv}`: one derivation, shared by every job that needs it. `status` is
 * the derivation's own (a job's list shows that job's mirror of it, which may lag a moment).
 */
export const DerivationDetail = JobDerivationView.extend({
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  queuedAt: z.iso.datetime().optional(),
  finishedAt: z.iso.datetime().optional(),
  /** The current attempt number (1 before any retry). */
  attempt: z.number().int().min(1),
  inputDrvs: z.array(DrvPath),
  /** Oldest first; at most the last 100 moves. */
  history: z.array(StatusMove),
  /** Oldest first. */
  attempts: z.array(AttemptView),
  /** Jobs that need it, newest first (at most 20). */
  jobs: z.array(z.string()),
});
export type DerivationDetail = z.infer<typeof DerivationDetail>;

/**
 * `GET /api/derivations/{drv}/log?attempt=&before=&after=&limit=`: a window of one attempt's
 * log in whole chunks, oldest line first. Without `before`/`after` it is the tail. `before`
 * (the answer's `start`) pages backwards; `after` (the answer's `end`) reads what was appended.
 */
export const LogPage = DerivationLog.extend({
  attempt: z.number().int().min(1).optional(),
  /** Cursor of this window's first chunk: pass as `before` for older lines (when `truncated`). */
  start: z.string().optional(),
  /** Cursor of this window's last chunk: pass as `after` to poll for new lines. */
  end: z.string().optional(),
  /** The attempt is still building: more lines may come. */
  building: z.boolean().optional(),
});
export type LogPage = z.infer<typeof LogPage>;

/** A task an agent is running, for `GET /api/agents`. */
export const RunningTask = z.strictObject({
  taskId: z.string(),
  kind: z.enum(["build", "evaluate"]),
  drvPath: DrvPath.optional(),
  attempt: z.number().int().min(1).optional(),
  jobId: z.string().optional(),
  startedAt: z.iso.datetime(),
});
export type RunningTask = z.infer<typeof RunningTask>;

/** `GET /api/agents` as the dashboard reads it: each agent with what it is running. */
export const AgentWithTasks = AgentView.extend({
  sessionId: z.string().optional(),
  draining: z.boolean().optional(),
  tasks: z.array(RunningTask).optional(),
});
export type AgentWithTasks = z.infer<typeof AgentWithTasks>;
export const AgentsWithTasks = z.strictObject({ agents: z.array(AgentWithTasks) });
export type AgentsWithTasks = z.infer<typeof AgentsWithTasks>;

/** `POST /api/dashboard/sign-in`: a one-time code from `nimbus dashboard`, or an API token. */
export const SignInRequest = z.union([
  z.strictObject({ code: z.string().min(16).max(128) }),
  z.strictObject({ token: z.string().min(16).max(512) }),
]);
export type SignInRequest = z.infer<typeof SignInRequest>;

/** What the page may know of its session: never the cookie's secret. */
export const DashboardSession = z.strictObject({
  /** Sent back as `X-Nimbus-CSRF` on every POST/DELETE the page makes. */
  csrfToken: z.string(),
  expiresAt: z.iso.datetime(),
});
export type DashboardSession = z.infer<typeof DashboardSession>;

/** `POST /api/dashboard/codes` (bearer only): what `nimbus dashboard` prints as a link. */
export const SignInCode = z.strictObject({
  code: z.string(),
  expiresAt: z.iso.datetime(),
});
export type SignInCode = z.infer<typeof SignInCode>;
