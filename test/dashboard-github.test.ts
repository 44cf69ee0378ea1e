/**
 * The dashboard on a fork's pull request held for approval (docs/github.md), in headless
 * Chromium against the real local stack in GitHub App mode, pointed at the GitHub stand-in:
 * signed webhooks hold, approve and close, a scripted agent over real WebSockets runs what is
 * approved, and the pages show each step as it happens.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { postGithubWebhook } from "@nimbus/cli";
import type { EvaluationEvent } from "@nimbus/protocol";
import { assertAccessibleLightAndDark } from "./support/axe.ts";
import { launchBrowser, signIn, type TestBrowser } from "./support/browser.ts";
import { GithubStandin, testAppKeys } from "./support/github-standin.ts";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

const APP_ID = 4343;
const INSTALLATION = 78;
const REPO = "acme/widgets";
const sha = (c: string) => c.repeat(40);
const drv = (name: string) => `/nix/store/${name.padEnd(32, "0").slice(0, 32)}-${name}.drv`;
const evaluate = (name: string): EvaluationEvent[] => [
  { kind: "derivation", drvPath: drv(name), system: "x86_64-linux", requiredFeatures: [], inputDrvs: [], outputs: { out: `/nix/store/${name.padEnd(32, "1").slice(0, 32)}-${name}` } },
  { kind: "attribute", path: [name], drvPath: drv(name), attributeType: "regular", needsBuild: true },
];

/** A pull request event from `author`'s fork, as GitHub sends it to an App. */
function pullRequest(action: string, fields: { number: number; commit: string; author: string; sender?: string; label?: string }) {
  const fork = `${fields.author}/widgets`;
  return {
    action,
    number: fields.number,
    pull_request: {
      number: fields.number,
      head: { sha: fields.commit, ref: "patch-1", repo: { full_name: fork, clone_url: `https://github.com/${fork}.git`, private: false } },
      base: { ref: "main", repo: { full_name: REPO } },
      user: { login: fields.author },
    },
    ...(fields.label ? { label: { name: fields.label } } : {}),
    repository: { full_name: REPO, name: "widgets", owner: { login: "acme" }, clone_url: `https://github.com/${REPO}.git`, private: false },
    installation: { id: INSTALLATION },
    sender: { login: fields.sender ?? fields.author },
  };
}

describe("dashboard: a fork's pull request held for approval", () => {
  const keys = testAppKeys();
  let standin: GithubStandin;
  let stack: TestStack;
  let agent: ScriptedAgent;
  let browser: TestBrowser;
  let page: Page;

  const deliver = async (payload: unknown) => {
    const response = await postGithubWebhook(stack.url, stack.secrets.GithubWebhookSecret, "pull_request", JSON.stringify(payload));
    return { status: response.status, body: (await response.json()) as any };
  };
  const openHeld = async (number: number, commit: string) => {
    const opened = await deliver(pullRequest("opened", { number, commit, author: "outsider" }));
    assert.equal(opened.status, 201, JSON.stringify(opened.body));
    const jobId = opened.body.jobId as string;
    assert.equal((await stack.api("GET", `/api/jobs/${jobId}`)).body.status, "held");
    return jobId;
  };
  const heading = (jobId: string) => page.getByRole("heading", { name: `Job ${jobId}`, level: 1 });
  const fact = (name: string) => page.locator(".facts dt", { hasText: name }).locator("xpath=following-sibling::dd[1]");

  before(async () => {
    standin = await GithubStandin.start({
      appId: APP_ID,
      appPublicKey: keys.publicKey,
      installations: [
        {
          id: INSTALLATION,
          account: "acme",
          repositories: [REPO],
          permissions: { checks: "write", contents: "read", metadata: "read", pull_requests: "read", statuses: "write" },
        },
      ],
      collaborators: { [REPO]: { maintainer: "write", outsider: "read" } },
    });
    stack = await startTestStack({
      sweepIntervalMs: 0,
      secrets: { GithubAppId: String(APP_ID), GithubAppPrivateKey: keys.privateKey },
      environment: { NIMBUS_GITHUB_API_URL: standin.url, NIMBUS_PUBLIC_URL: "https://nimbus.example.org" },
    });
    const { token } = await stack.createToken("dashboard-github");
    agent = ScriptedAgent.create("linux", { concurrentTasks: 2 }, { evaluate: (task) => evaluate(`ok${task.commit[0]}`), buildMs: 50 });
    await agent.connect(stack.agentSocketUrl, token);
    browser = await launchBrowser();
    page = await browser.newPage();
    await signIn(page, stack.url, stack.adminToken);
  });
  after(async () => {
    await browser?.close();
    agent?.close();
    await stack?.cleanup();
    await standin?.close();
  });

  it("shows a held job, why it waits and how it is approved, then follows it live once a maintainer approves", async () => {
    const jobId = await openHeld(12, sha("d"));
    await page.goto(`${stack.url}/`);
    const row = page.locator(`tr[data-job="${jobId}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /^held\s+j\w+\s+acme\/widgets\s+refs\/pull\/12\/head[\s\S]*awaiting approval$/);

    await row.getByRole("link", { name: jobId }).click();
    await heading(jobId).locator(".status", { hasText: "held" }).waitFor();
    const held = page.getByRole("region", { name: "Waiting for approval" });
    assert.match(await held.innerText(), /Pull request #12 comes from outsider\/widgets: its code runs only once someone with write access approves this commit\./);
    assert.match(await held.innerText(), /write access to acme\/widgets approves commit dddddddddddd on GitHub: Approve and run[\s\S]*the label nimbus-approved on the pull request/);
    // The label is the one the job's view names (the webhook policy's), not one the page knows.
    await stack.setAttributes("Jobs", { jobId }, { approvalLabel: "ship-it" });
    await held.getByText("ship-it", { exact: true }).waitFor();
    assert.doesNotMatch(await held.innerText(), /nimbus-approved/);
    assert.equal(await fact("Trust").innerText(), "untrusted: a fork's commit, given no secrets and running no effects");
    assert.equal(await fact("Evaluation").innerText(), "not started: held for approval");
    assert.match(await fact("Held for").innerText(), /\d/);
    await page.getByText("Nothing is evaluated until the commit is approved.").waitFor();
    assert.equal(await page.getByRole("button", { name: "Cancel job" }).count(), 1);
    assert.equal(await page.getByRole("button", { name: "Run without approval" }).count(), 1);
    assert.equal(await page.getByRole("button", { name: "Rerun" }).count(), 0, "a held job is run deliberately, not re-run");
    assert.equal(agent.evaluations.length, 0, "nothing ran");

    // A maintainer approves on GitHub: the open page follows the job through to its verdict.
    const approved = await deliver(pullRequest("labeled", { number: 12, commit: sha("d"), author: "outsider", sender: "maintainer", label: "nimbus-approved" }));
    assert.deepEqual(approved.body, { action: "approve-fork", jobIds: [jobId] });
    await heading(jobId).locator(".status", { hasText: "succeeded" }).waitFor({ timeout: 20_000 });
    assert.equal(await held.count(), 0);
    assert.match(await fact("Trigger").innerText(), /^pull_request #12 by outsider, approved by maintainer$/);
    assert.equal(await fact("Trust").innerText(), "untrusted: a fork's commit, given no secrets and running no effects");
    await page.getByRole("listbox", { name: "derivations" }).getByRole("option", { name: /okd/ }).waitFor();
    assert.equal(agent.evaluations.find((t) => t.jobId === jobId)?.untrusted, true);
    assert.deepEqual(browser.problems, []);
  });

  it("a held job's pages pass axe-core, light and dark", async () => {
    const jobId = await openHeld(14, sha("f"));
    const audited = await launchBrowser({ bypassCSP: true });
    try {
      const tab = await audited.newPage();
      await signIn(tab, stack.url, stack.adminToken);
      await tab.locator(`tr[data-job="${jobId}"]`).getByText("awaiting approval").waitFor();
      await assertAccessibleLightAndDark(tab, "jobs");
      await tab.goto(`${stack.url}/jobs/${jobId}`);
      await tab.getByRole("region", { name: "Waiting for approval" }).waitFor();
      await assertAccessibleLightAndDark(tab, "held job");
    } finally {
      await audited.close();
    }
    const closed = await deliver(pullRequest("closed", { number: 14, commit: sha("f"), author: "outsider" }));
    assert.deepEqual(closed.body, { action: "cancel-pull-request", jobIds: [jobId] });
  });

  it("runs a held commit without approval as a new untrusted job, and cancels the held one", async () => {
    const jobId = await openHeld(13, sha("c"));
    await page.goto(`${stack.url}/jobs/${jobId}`);
    await page.getByRole("region", { name: "Waiting for approval" }).waitFor();

    const dialogs: string[] = [];
    page.once("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.accept();
    });
    await page.getByRole("button", { name: "Run without approval" }).click();
    await page.waitForURL((url) => url.pathname.startsWith("/jobs/") && url.pathname !== `/jobs/${jobId}`);
    assert.match(dialogs[0]!, /Run commit cccccccccccc of this fork without approval[\s\S]*untrusted[\s\S]*Review the diff first/);
    const rerunId = new URL(page.url()).pathname.slice("/jobs/".length);
    await heading(rerunId).locator(".status", { hasText: "succeeded" }).waitFor({ timeout: 20_000 });
    assert.match(await fact("Trigger").innerText(), new RegExp(`^rerun #13 of ${jobId}$`));
    assert.equal(await fact("Trust").innerText(), "untrusted: a fork's commit, given no secrets and running no effects");
    assert.equal(agent.evaluations.find((t) => t.jobId === rerunId)?.untrusted, true);

    // Back to the held job: still held (the run did not approve it); cancelled from the page.
    await page.goBack();
    await heading(jobId).locator(".status", { hasText: "held" }).waitFor();
    page.once("dialog", (dialog) => void dialog.accept());
    await page.getByRole("button", { name: "Cancel job" }).click();
    await heading(jobId).locator(".status", { hasText: "cancelled" }).waitFor({ timeout: 10_000 });
    assert.equal(await page.getByRole("region", { name: "Waiting for approval" }).count(), 0);
    assert.equal(await page.getByRole("button", { name: "Cancel job" }).count(), 0);
    const view = (await stack.api("GET", `/api/jobs/${jobId}`)).body;
    assert.equal(view.status, "cancelled");
    assert.equal(view.holdReason, undefined, "a hold reason is shown only while held");
    assert.equal(agent.evaluations.some((t) => t.jobId === jobId), false, "the held job itself never ran");
    assert.deepEqual(browser.problems, []);
  });
});
