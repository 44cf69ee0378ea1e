/**
 * `POST /webhooks/github`: verifies GitHub's signature on the exact bytes received, asks
 * @nimbus/github what the event means (docs/github.md, "What Nimbus does with each event") and
 * carries it out: a job per push (exactly once per delivery, and per signed body), a fork's pull request held until
 * approved, approvals, cancels of closed pull requests, re-runs, installation changes.
 */
import { createHash } from "node:crypto";
import { verify } from "@octokit/webhooks-methods";
import { classifyWebhook, GithubConfigError, WebhookPayloadError, type JobStart, type WebhookAction } from "@nimbus/github";
import type { WebhookAccepted, WebhookActed, WebhookIgnored } from "@nimbus/protocol";
import { wakeIdleAgents } from "../flow/dispatch.ts";
import { newJobId } from "../flow/job-ids.ts";
import { reportChangedJobs } from "../flow/job-reports.ts";
import { startRerun } from "../flow/job-rerun.ts";
import { queueEvaluation, startJob, type JobRequest } from "../flow/job-start.ts";
import { WorkNotes } from "../flow/new-work.ts";
import { approveHeldJobs, authorMayStart, cancelPullRequestJobs } from "../flow/pull-requests.ts";
import { badRequest, NimbusError, unauthorized } from "../platform/errors.ts";
import { github } from "../platform/github.ts";
import { secretValue } from "../platform/linked-resources.ts";
import { claimDelivery, getDelivery } from "../storage/deliveries.ts";
import type { DeliveryItem } from "../storage/items.ts";
import { getJob } from "../storage/jobs.ts";
import { json, type HttpEvent, type HttpResult } from "./http.ts";

/** GitHub caps payloads at 25 MB; a push or pull_request Nimbus acts on is far below 1 MiB. */
export const MAX_WEBHOOK_BYTES = 1024 * 1024;

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
  let action: WebhookAction;
  try {
    action = classifyWebhook(name, body, github().policy);
  } catch (error) {
    if (error instanceof WebhookPayloadError) throw badRequest(error.message);
    // Shown in GitHub's "Recent deliveries": it names the setting, never a secret's value.
    if (error instanceof GithubConfigError) throw new NimbusError("misconfigured", error.message, 500);
    throw error;
  }
  const work = new WorkNotes();
  const answer = await carryOut(action, { deliveryId, event: name, payload }, now, work);
  await wakeIdleAgents(work);
  await reportChangedJobs(work, now);
  return answer;
}

/** A delivery as received: GitHub's id for it, the event's name and the signed body's text. */
interface Delivery {
  deliveryId: string;
  event: string;
  payload: string;
}

async function carryOut(action: WebhookAction, delivery: Delivery, now: Date, work: WorkNotes): Promise<HttpResult> {
  const { deliveryId } = delivery;
  switch (action.type) {
    case "ignore":
      return json(202, { ignored: action.reason } satisfies WebhookIgnored);
    case "start-job":
      return oncePerEvent(delivery, now, work, (id, createdAt) => startJob(id, jobRequest(action.job, deliveryId), createdAt, work));
    case "hold-fork":
      return oncePerEvent(delivery, now, work, async (id, createdAt) => {
        // Its author could push to the repository anyway: it starts now, still as a fork.
        const start = await authorMayStart(action.job.repository, action.author, action.job.installationId);
        await startJob(id, { ...jobRequest(action.job, deliveryId), ...(start ? {} : { hold: { reason: action.reason, approvalLabel: github().policy.approvalLabel } }) }, createdAt, work);
      });
    case "approve-fork": {
      const { jobIds, note } = await approveHeldJobs(
        {
          repository: action.repository,
          commit: action.commit,
          approver: action.approver,
          ...(action.pullRequest !== undefined ? { pullRequest: action.pullRequest } : {}),
          ...(action.jobId !== undefined ? { jobId: action.jobId } : {}),
          ...(action.installationId !== undefined ? { installationId: action.installationId } : {}),
        },
        work,
        now,
      );
      if (note) console.log(JSON.stringify({ approval: action.commit, repository: action.repository, note }));
      return json(200, { action: "approve-fork", jobIds, ...(note ? { note } : {}) } satisfies WebhookActed);
    }
    case "cancel-pull-request": {
      const jobIds = await cancelPullRequestJobs(action.repository, action.pullRequest, work, now);
      return json(200, { action: "cancel-pull-request", jobIds } satisfies WebhookActed);
    }
    case "rerun-job": {
      const job = await getJob(action.jobId);
      // A check run names its job by external_id: only a job of the repository the event is about may be re-run.
      if (!job || job.repository !== action.repository) {
        return json(202, { ignored: `check run of ${action.repository} names job ${action.jobId}, which is not a job of that repository` } satisfies WebhookIgnored);
      }
      if (job.status === "held") {
        return json(202, { ignored: `job ${action.jobId} waits for approval: approve it (docs/github.md) rather than re-run it` } satisfies WebhookIgnored);
      }
      return oncePerDelivery(deliveryId, now, work, async (id) => {
        await startRerun(action.jobId, action.rebuildFailures, work, now, { id, sender: action.requestedBy });
      });
    }
    case "installation":
      // Nothing is stored of installations: tokens of a deleted or suspended one are dropped.
      github().reporting?.client.forget({ installationId: action.installationId });
      return json(200, { action: "installation", jobIds: [] } satisfies WebhookActed);
  }
}

/** The job a push or a pull request asks for, as the flows take it. */
function jobRequest(job: JobStart, deliveryId: string): JobRequest {
  return {
    repository: job.repository,
    ref: job.ref,
    commit: job.commit,
    cloneUrl: job.cloneUrl,
    trigger: {
      event: job.trigger,
      deliveryId,
      ...(job.sender ? { sender: job.sender } : {}),
      ...(job.pullRequest !== undefined ? { pullRequest: job.pullRequest } : {}),
    },
    github: { onGithub: job.onGithub, private: job.private, ...(job.installationId !== undefined ? { installationId: job.installationId } : {}) },
    ...(job.fork ? { untrusted: true } : {}),
    ...(job.defaultBranch ? { defaultBranch: job.defaultBranch } : {}),
  };
}

/**
 * A job made once per delivery: the delivery id is claimed first (a conditional put), so two
 * concurrent or repeated deliveries make one job. A redelivery finishes what a crashed first
 * attempt left undone: it creates the job if it is not there, and queues it again if it was
 * never evaluated.
 */
async function oncePerDelivery(deliveryId: string, now: Date, work: WorkNotes, create: (jobId: string, createdAt: string) => Promise<void>): Promise<HttpResult> {
  const claim: DeliveryItem = { deliveryId, jobId: newJobId(now), createdAt: now.toISOString() };
  if (await claimDelivery(claim)) {
    await create(claim.jobId, claim.createdAt);
    return json(201, { jobId: claim.jobId, redelivery: false } satisfies WebhookAccepted);
  }
  const delivery = await storedDelivery(deliveryId);
  await resumeJob(delivery, work, create);
  return json(200, { jobId: delivery.jobId, redelivery: true } satisfies WebhookAccepted);
}

/**
 * A job started by a push or pull request, made once per delivery and once per signed body:
 * the body's digest is claimed first, then the delivery id, each with a conditional put, so a
 * body replayed under a new delivery id (the signature covers only the body) is answered with
 * the job it made first. Events GitHub sends anew (a pull request reopened, a commit pushed
 * again) differ in their bodies, so each still makes its job.
 */
async function oncePerEvent(delivery: Delivery, now: Date, work: WorkNotes, create: (jobId: string, createdAt: string) => Promise<void>): Promise<HttpResult> {
  // A redelivery (its body may differ, as when a sender retries): its job, and no claim of this body for a job never made.
  const earlier = await getDelivery(delivery.deliveryId);
  if (earlier) {
    await resumeJob(earlier, work, create);
    return json(200, { jobId: earlier.jobId, redelivery: true } satisfies WebhookAccepted);
  }
  const first: DeliveryItem = { deliveryId: bodyKey(delivery), jobId: newJobId(now), createdAt: now.toISOString() };
  const firstOfItsBody = await claimDelivery(first);
  const forBody = firstOfItsBody ? first : await storedDelivery(first.deliveryId);
  if (!(await claimDelivery({ ...forBody, deliveryId: delivery.deliveryId }))) {
    const redelivered = await storedDelivery(delivery.deliveryId);
    await resumeJob(redelivered, work, create);
    return json(200, { jobId: redelivered.jobId, redelivery: true } satisfies WebhookAccepted);
  }
  if (!firstOfItsBody) {
    await resumeJob(forBody, work, create);
    return json(200, { jobId: forBody.jobId, redelivery: true } satisfies WebhookAccepted);
  }
  await create(forBody.jobId, forBody.createdAt);
  return json(201, { jobId: forBody.jobId, redelivery: false } satisfies WebhookAccepted);
}

/** The Deliveries key of a signed body: no GitHub delivery id (a UUID) can be one. */
const bodyKey = ({ event, payload }: Delivery) => `body:${createHash("sha256").update(event).update("\n").update(payload).digest("hex")}`;

async function storedDelivery(deliveryId: string): Promise<DeliveryItem> {
  const delivery = await getDelivery(deliveryId);
  if (!delivery) throw new Error(`delivery ${deliveryId} was claimed, yet it is not stored`);
  return delivery;
}

/** A repeated delivery: create the job if the first attempt died before it, queue it again if it was never evaluated. */
async function resumeJob(delivery: DeliveryItem, work: WorkNotes, create: (jobId: string, createdAt: string) => Promise<void>): Promise<void> {
  const job = await getJob(delivery.jobId);
  if (!job) await create(delivery.jobId, delivery.createdAt);
  else if (job.status === "evaluating" && job.evaluation.status === "queued") await queueEvaluation(job.jobId, work);
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
