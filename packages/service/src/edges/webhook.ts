/**
 * `POST /webhooks/github`: verifies GitHub's signature on the exact bytes received, turns a
 * push or pull_request into a job exactly once per delivery, and queues its evaluation.
 */
import { createHash } from "node:crypto";
import { verify } from "@octokit/webhooks-methods";
import {
  PULL_REQUEST_ACTIONS,
  PullRequestEvent,
  PushEvent,
  type WebhookAccepted,
  type WebhookIgnored,
} from "@nimbus/protocol";
import type { z } from "zod";
import { wakeIdleAgents } from "../flow/dispatch.ts";
import { newJobId } from "../flow/job-ids.ts";
import { queueEvaluation, startJob as createJobFor, type JobRequest } from "../flow/job-start.ts";
import { WorkNotes } from "../flow/new-work.ts";
import { badRequest, NimbusError, unauthorized } from "../platform/errors.ts";
import { secretValue } from "../platform/linked-resources.ts";
import { claimDelivery, getDelivery } from "../storage/deliveries.ts";
import type { DeliveryItem } from "../storage/items.ts";
import { getJob } from "../storage/jobs.ts";
import { json, type HttpEvent, type HttpResult } from "./http.ts";

/** GitHub caps payloads at 25 MB; a push or pull_request Nimbus acts on is far below 1 MiB. */
export const MAX_WEBHOOK_BYTES = 1024 * 1024;
/** `after` of a push that deletes its branch. */
const NULL_SHA = "0".repeat(40);

export async function receiveGithubWebhook(event: HttpEvent, now: Date = new Date()): Promise<HttpResult> {
  const payload = await verifiedPayload(event);
  const name = header(event, "x-github-event");
  const deliveryId = header(event, "x-github-delivery");
  if (!name) throw badRequest("missing X-GitHub-Event header — send the headers GitHub sends with the payload");
  if (!deliveryId || deliveryId.length > 128) throw badRequest("missing or oversize X-GitHub-Delivery header — send GitHub's delivery id (a UUID)");

  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch {
    throw badRequest("webhook body is not valid JSON — configure the webhook with content type application/json");
  }
  const request = interpret(name, deliveryId, body);
  if ("ignored" in request) return json(202, request satisfies WebhookIgnored);
  const work = new WorkNotes();
  const accepted: WebhookAccepted = await startJob(deliveryId, name, request, now, work);
  await wakeIdleAgents(work);
  return json(accepted.redelivery ? 200 : 201, accepted);
}

/** The body as text, once its size and `X-Hub-Signature-256` check out; nothing is read before. */
async function verifiedPayload(event: HttpEvent): Promise<string> {
  const bytes = event.body ? Buffer.from(event.body, event.isBase64Encoded ? "base64" : "utf8") : Buffer.alloc(0);
  if (bytes.length > MAX_WEBHOOK_BYTES) {
    throw new NimbusError("payload-too-large", `webhook body is ${bytes.length} bytes; Nimbus accepts at most ${MAX_WEBHOOK_BYTES}`, 413);
  }
  const signature = header(event, "x-hub-signature-256");
  if (!signature) throw unauthorized("missing X-Hub-Signature-256 — set the webhook's secret to the stack's GithubWebhookSecret");
  if (bytes.length === 0) throw badRequest("empty webhook body");
  let text: string;
  try {
    // The signature covers the bytes; verify() takes a string, which only UTF-8 text turns back into them.
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw badRequest("webhook body is not UTF-8 text — GitHub sends JSON");
  }
  if (!(await verify(secretValue("GithubWebhookSecret"), text, signature))) {
    throw unauthorized("X-Hub-Signature-256 does not match the body — the webhook's secret must be the stack's GithubWebhookSecret");
  }
  return text;
}

/** API Gateway lower-cases header names; a local caller might not. */
function header(event: HttpEvent, name: string): string | undefined {
  const value = event.headers?.[name] ?? Object.entries(event.headers ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];
  return value?.trim() || undefined;
}

function parsePayload<T extends z.ZodType>(schema: T, body: unknown, event: string): z.infer<T> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
  throw badRequest(`invalid ${event} payload: ${issues}`);
}

/** Which job an event asks for, or why it asks for none. */
function interpret(name: string, deliveryId: string, body: unknown): JobRequest | { ignored: string } {
  if (name === "push") {
    const push = parsePayload(PushEvent, body, "push");
    if (push.deleted || push.after === NULL_SHA) return { ignored: `push deletes ${push.ref}: nothing to build` };
    return {
      repository: push.repository.full_name,
      ref: push.ref,
      commit: push.after,
      cloneUrl: push.repository.clone_url,
      trigger: { event: "push", deliveryId, ...(push.sender ? { sender: push.sender.login } : {}) },
    };
  }
  if (name === "pull_request") {
    // Decided before validation: a `closed` or `labeled` payload need not match the schema to be ignored.
    const action = typeof body === "object" && body !== null ? (body as { action?: unknown }).action : undefined;
    if (typeof action === "string" && !(PULL_REQUEST_ACTIONS as readonly string[]).includes(action)) {
      return { ignored: `pull_request action "${action}" starts no job (only ${PULL_REQUEST_ACTIONS.join(", ")} do)` };
    }
    const pr = parsePayload(PullRequestEvent, body, "pull_request");
    return {
      repository: pr.repository.full_name,
      ref: `refs/pull/${pr.number}/head`,
      commit: pr.pull_request.head.sha,
      // A fork's commits are only in the fork.
      cloneUrl: pr.pull_request.head.repo.clone_url,
      trigger: { event: "pull_request", deliveryId, pullRequest: pr.number, ...(pr.sender ? { sender: pr.sender.login } : {}) },
    };
  }
  return { ignored: `event "${name}" starts no job (only push and pull_request do)` };
}

/**
 * The event's content (event, repository, ref, commit) is claimed first, then the delivery,
 * each with a conditional put, so two concurrent or repeated deliveries make one job — and so
 * does a signed body replayed under a new delivery id (the signature covers only the body):
 * it is answered with the job its content made first. A redelivery finishes what a crashed
 * first attempt left undone.
 */
async function startJob(deliveryId: string, event: string, request: JobRequest, now: Date, work: WorkNotes): Promise<WebhookAccepted> {
  const first: DeliveryItem = { deliveryId: contentKey(event, request), jobId: newJobId(now), createdAt: now.toISOString() };
  const firstOfItsContent = await claimDelivery(first);
  const forContent = firstOfItsContent ? first : await stored(first.deliveryId);
  if (!(await claimDelivery({ ...forContent, deliveryId }))) {
    const delivery = await stored(deliveryId);
    await resumeJob(delivery, request, work);
    return { jobId: delivery.jobId, redelivery: true };
  }
  if (!firstOfItsContent) {
    await resumeJob(forContent, request, work);
    return { jobId: forContent.jobId, redelivery: true };
  }
  await createJob(forContent, request, work);
  return { jobId: forContent.jobId, redelivery: false };
}

async function stored(deliveryId: string): Promise<DeliveryItem> {
  const delivery = await getDelivery(deliveryId);
  if (!delivery) throw new Error(`delivery ${deliveryId} was claimed, yet it is not stored`);
  return delivery;
}

/** What makes two deliveries the same event, as a Deliveries key no GitHub delivery id (a UUID) can be. */
const contentKey = (event: string, request: JobRequest) =>
  `content:${createHash("sha256").update(JSON.stringify([event, request.repository, request.ref ?? "", request.commit])).digest("hex")}`;

const createJob = (delivery: DeliveryItem, request: JobRequest, work: WorkNotes) => createJobFor(delivery.jobId, request, delivery.createdAt, work);

/** A redelivery: create the job if the first attempt died before it, re-queue it if never evaluated. */
async function resumeJob(delivery: DeliveryItem, request: JobRequest, work: WorkNotes): Promise<void> {
  const job = await getJob(delivery.jobId);
  if (!job) return createJob(delivery, request, work);
  if (job.evaluation.status === "queued") await queueEvaluation(job.jobId, work);
}
