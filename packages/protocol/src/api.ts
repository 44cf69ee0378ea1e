import * as z from "zod";
import { AgentInfo } from "./agent-info.ts";
import { DrvPath } from "./nix-names.ts";

/** `GET /api/service-info` (no auth): how agents find the WebSocket. */
export const ServiceInfo = z.strictObject({
  serviceVersion: z.string(),
  protocolVersion: z.number().int(),
  agentSocketUrl: z.string(),
});
export type ServiceInfo = z.infer<typeof ServiceInfo>;

/** Every non-2xx answer of the JSON API and the webhook. */
export const ApiError = z.strictObject({
  error: z.strictObject({ code: z.string(), message: z.string() }),
});
export type ApiError = z.infer<typeof ApiError>;

export const TokenName = z.string().trim().min(1).max(100).regex(/^[\w .@:-]+$/, "letters, digits, space and . _ @ : -");

/** `POST /api/tokens` */
export const CreateTokenRequest = z.strictObject({ name: TokenName.optional() });
export type CreateTokenRequest = z.infer<typeof CreateTokenRequest>;

export const TokenView = z.strictObject({
  id: z.string(),
  name: z.string(),
  createdAt: z.iso.datetime(),
  revokedAt: z.iso.datetime().optional(),
});
export type TokenView = z.infer<typeof TokenView>;

/** The only time the secret is shown. */
export const CreateTokenResponse = TokenView.extend({ token: z.string() });
export type CreateTokenResponse = z.infer<typeof CreateTokenResponse>;

export const TokenList = z.strictObject({ tokens: z.array(TokenView) });
export type TokenList = z.infer<typeof TokenList>;

/** A task an agent is running, for `GET /api/agents`. */
export const RunningTask = z.strictObject({
  taskId: z.string(),
  kind: z.enum(["build", "evaluate"]),
  drvPath: DrvPath.optional(),
  /** Counted from 1. */
  attempt: z.number().int().min(1).optional(),
  jobId: z.string().optional(),
  startedAt: z.iso.datetime(),
  /** A build Nix is done with whose outputs the agent is pushing (`build-pushing`): its slot is free already. */
  pushing: z.literal(true).optional(),
});
export type RunningTask = z.infer<typeof RunningTask>;

/** A connected agent as `GET /api/agents` shows it. */
export const AgentView = AgentInfo.extend({
  connectionId: z.string(),
  tokenId: z.string(),
  connectedAt: z.iso.datetime(),
  lastSeen: z.iso.datetime(),
  runningTasks: z.number().int().min(0),
  /** Caches this agent last failed to push to or ask, with why and when (cleared by its next successful push). */
  cacheProblems: z.array(z.strictObject({ cache: z.string(), problem: z.string(), at: z.iso.datetime() })).optional(),
  sessionId: z.string().optional(),
  /** It is stopping: it finishes what it runs and takes nothing new. */
  draining: z.boolean().optional(),
  /** What it is running, oldest first (docs/dashboard-api.md); absent from an older server. */
  tasks: z.array(RunningTask).optional(),
});
export type AgentView = z.infer<typeof AgentView>;

export const AgentList = z.strictObject({ agents: z.array(AgentView) });
export type AgentList = z.infer<typeof AgentList>;
