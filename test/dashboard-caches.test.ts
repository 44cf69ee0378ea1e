/**
 * The dashboard on binary caches and where inputs are (docs/agent.md, "Binary caches"), in
 * headless Chromium against the real local stack, protocol-level agents with their own stores
 * and caches building over real WebSockets: a push that failed, a build no agent can obtain the
 * inputs of (and why), each agent's store and caches — then the wait ending when an agent on
 * the machine that has the inputs connects.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { sendSignedPush } from "@nimbus/cli";
import type { CacheInfo, EvaluationEvent } from "@nimbus/protocol";
import { sweep } from "@nimbus/service";
import { assertAccessibleLightAndDark } from "./support/axe.ts";
import { launchBrowser, signIn, type TestBrowser } from "./support/browser.ts";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

const drv = (name: string) => `/nix/store/${name.padEnd(32, "0").slice(0, 32)}-${name}.drv`;
const basename = (name: string) => drv(name).slice("/nix/store/".length);
const STORE_X = "x/aaaaaaaaaaaa";
const shared: CacheInfo = { name: "shared", kind: "NixCache", publicKeys: ["shared-1:AAAA"], push: true, pull: true };
const readShared: CacheInfo = { ...shared, push: false };
const other: CacheInfo = { name: "other", kind: "AtticCache", publicKeys: ["other-1:AAAA"], push: false, pull: true };
const PUSH_FAILED = "push to shared failed: HTTP 403: read-only";
const REASON = "inputs only on agent x; no shared cache";
/** A cache's answer quoted in a problem can carry what a repository named its paths: shown as text. */
const HOSTILE_ANSWER = `HTTP 400: bad path /nix/store/<img src=x onerror="window.pwned=1">`;

const derivation = (name: string, inputs: string[], features: string[]): EvaluationEvent => ({
  kind: "derivation",
  drvPath: drv(name),
  system: "x86_64-linux",
  requiredFeatures: features,
  inputDrvs: inputs.map(drv),
  outputs: { out: `/nix/store/${name}-out` },
  sources: [[`store:${STORE_X}`, "cache:shared"]],
});
const attribute = (name: string): EvaluationEvent => ({ kind: "attribute", path: [name], drvPath: drv(name), attributeType: "regular", needsBuild: true });
// p is built by X alone (feature fx) and its push fails: it stays in X's store. r needs p and
// feature fr, which only Z (another machine, reading the shared cache) has.
const EVENTS: EvaluationEvent[] = [derivation("p", [], ["fx"]), derivation("r", ["p"], ["fr"]), attribute("p"), attribute("r")];
/** The sweeper's re-send window here, shorter than two heartbeats (60 s), after which it closes a connection as silent. */
const REQUEUE_AFTER_MS = 10_000;
/** Past the re-send window, within two heartbeats of every agent's last word: queued work is offered again, nobody is given up. */
const resendTime = () => new Date(Date.now() + REQUEUE_AFTER_MS + 5_000);

describe("dashboard: binary caches and where inputs are", () => {
  let stack: TestStack;
  let token: string;
  let x: ScriptedAgent;
  let z: ScriptedAgent;
  let browser: TestBrowser;
  let page: Page;
  let jobId: string;

  const fact = (name: string) => page.locator(".facts dt", { hasText: name }).locator("xpath=following-sibling::dd[1]");
  const derivationRow = (name: string) =>
    page.getByRole("listbox", { name: "derivations" }).getByRole("option").filter({ has: page.locator(".name", { hasText: new RegExp(`^${name}$`) }) });

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0, environment: { NIMBUS_REQUEUE_AFTER_MS: String(REQUEUE_AFTER_MS) } });
    token = (await stack.createToken("dashboard-caches")).token;
    x = ScriptedAgent.create(
      "x",
      { storeId: STORE_X, caches: [shared], pushCaches: ["shared"], systemFeatures: ["fx"], concurrentTasks: 2 },
      {
        evaluate: () => EVENTS,
        evaluationCaches: () => [{ cache: "shared", status: "failed", reason: HOSTILE_ANSWER }],
        build: () => ({ status: "succeeded", caches: [{ cache: "shared", status: "failed", reason: "HTTP 403: read-only" }] }),
        buildMs: 20,
      },
    );
    z = ScriptedAgent.create("z", { storeId: "z/cccccccccccc", caches: [readShared, other], systemFeatures: ["fr"], concurrentTasks: 2 }, { buildMs: 5 });
    // X alone first, so X evaluates.
    await x.connect(stack.agentSocketUrl, token);
    const pushed = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository: "acme/caches", commit: "cac4e".padEnd(40, "0") });
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    jobId = pushed.body.jobId;
    await eventually(async () => (x.settled.includes(drv("p")) ? true : undefined), "X to build p");
    await z.connect(stack.agentSocketUrl, token);
    browser = await launchBrowser();
    page = await browser.newPage();
    await signIn(page, stack.url, stack.adminToken);
  });
  after(async () => {
    await browser?.close();
    x?.close();
    z?.close();
    await stack?.cleanup();
  });

  it("a build whose push failed: the failed push on its row and its page, and where its outputs are", async () => {
    await page.goto(`${stack.url}/jobs/${jobId}`);
    const evaluation = page.getByRole("region", { name: "Cache problems while evaluating" });
    await evaluation.waitFor();
    assert.match(await evaluation.innerText(), /could not push the \.drv files/);
    assert.equal(await evaluation.locator("li").innerText(), `push to shared failed: ${HOSTILE_ANSWER}`);
    assert.equal(await page.locator("main img").count(), 0);
    assert.equal(await page.evaluate("window.pwned"), undefined);

    const row = derivationRow("p");
    await row.locator(".status", { hasText: "succeeded" }).waitFor();
    assert.equal(await row.locator(".detail").innerText(), PUSH_FAILED);
    assert.equal(await row.locator(".detail.error").count(), 1, "shown as a problem");

    await row.click();
    await page.waitForURL((url) => url.pathname === `/derivations/${basename("p")}`);
    const problems = page.getByRole("region", { name: "Cache problems" });
    await problems.waitFor();
    assert.match(await problems.innerText(), new RegExp(`Pushes of its outputs that failed[\\s\\S]*${PUSH_FAILED}`));
    assert.equal(await fact("Outputs are in").innerText(), `agent x's store (${STORE_X})`);
    assert.deepEqual(browser.problems, []);
  });

  it("a build no agent can obtain the inputs of: why it waits, on the job, its row and its page", async () => {
    await page.goto(`${stack.url}/jobs/${jobId}`);
    const waiting = page.getByRole("region", { name: "Waiting for an agent that can obtain their inputs" });
    await waiting.waitFor({ timeout: 15_000 });
    assert.match(await waiting.innerText(), new RegExp(`1 derivation: ${REASON}`));
    assert.equal(await page.getByRole("region", { name: "Waiting for an agent that can build them" }).count(), 0, "Z can build it");

    const row = derivationRow("r");
    await row.locator(".status", { hasText: "queued" }).waitFor();
    assert.equal(await row.locator(".detail").innerText(), `waiting: ${REASON}`);

    await row.click();
    await page.waitForURL((url) => url.pathname === `/derivations/${basename("r")}`);
    await page.getByText(`an agent that can obtain its inputs: ${REASON}`).waitFor();
    assert.equal(await fact("Waiting for").innerText(), `an agent that can obtain its inputs: ${REASON}`);
    assert.deepEqual(z.builds, [], "Z was never given r");
    assert.deepEqual(browser.problems, []);
  });

  it("lists each agent's store and caches, and the cache an agent could not push to", async () => {
    await page.goto(`${stack.url}/agents`);
    const rowX = page.getByRole("row", { name: /^x\b/ });
    const rowZ = page.getByRole("row", { name: /^z\b/ });
    await rowX.waitFor();
    const cachesX = rowX.locator("ul.caches");
    assert.match(await rowX.locator("th").innerText(), new RegExp(`store ${STORE_X}`));
    // X's latest failed push: its build's (403) or its evaluation's .drv push (the hostile answer,
    // shown as text) — p is built while the evaluation still runs, so either may come last.
    const lastFailure = (await cachesX.innerText()).split("\n");
    assert.equal(lastFailure[0], "shared reads, pushes · NixCache");
    assert.match(lastFailure[1] ?? "", /^push to shared failed: (HTTP 403: read-only|HTTP 400: bad path \/nix\/store\/<img src=x onerror="window\.pwned=1">) \((just now|\d+ s ago)\)$/);
    assert.equal(lastFailure.length, 2);
    assert.equal(await page.evaluate("window.pwned"), undefined);
    assert.equal(await cachesX.locator(".error").count(), 1);
    assert.match(await rowZ.locator("th").innerText(), /store z\/cccccccccccc/);
    assert.equal(await rowZ.locator("ul.caches").innerText(), "shared reads · NixCache\nother reads · AtticCache");
    assert.equal(await rowZ.locator("ul.caches .error").count(), 0);
    assert.deepEqual(browser.problems, []);
  });

  it("these pages pass axe-core, light and dark", async () => {
    const audited = await launchBrowser({ bypassCSP: true });
    try {
      const tab = await audited.newPage();
      await signIn(tab, stack.url, stack.adminToken);
      const pages: Array<[string, string, () => Promise<void>]> = [
        ["job", `/jobs/${jobId}`, () => tab.getByRole("region", { name: "Waiting for an agent that can obtain their inputs" }).waitFor()],
        ["pushed nowhere", `/derivations/${basename("p")}`, () => tab.getByRole("region", { name: "Cache problems" }).waitFor()],
        ["waiting", `/derivations/${basename("r")}`, () => tab.getByText(`an agent that can obtain its inputs: ${REASON}`).waitFor()],
        ["agents", "/agents", () => tab.locator("ul.caches .error").waitFor()],
      ];
      for (const [what, path, ready] of pages) {
        await tab.goto(`${stack.url}${path}`);
        await ready();
        await assertAccessibleLightAndDark(tab, what);
      }
    } finally {
      await audited.close();
    }
  });

  it("the wait ends when an agent on the machine that has the inputs connects: the page follows the build to the job's verdict", async () => {
    await page.goto(`${stack.url}/jobs/${jobId}`);
    const waiting = page.getByRole("region", { name: "Waiting for an agent that can obtain their inputs" });
    await waiting.waitFor();
    const w = ScriptedAgent.create("w", { storeId: STORE_X, systemFeatures: ["fr"], concurrentTasks: 1 }, { buildMs: 5 });
    await w.connect(stack.agentSocketUrl, token);
    try {
      // r was taken off its queue when nobody could build it: the sweeper offers it again.
      assert.equal((await sweep(resendTime())).derivationsResent, 1);
      await eventually(async () => (w.settled.includes(drv("r")) ? true : undefined), "W to build r");
      await page.getByRole("heading", { name: `Job ${jobId}`, level: 1 }).locator(".status", { hasText: "succeeded" }).waitFor({ timeout: 15_000 });
      await waiting.waitFor({ state: "detached", timeout: 15_000 });
      await derivationRow("r").locator(".status", { hasText: "succeeded" }).waitFor();
      assert.deepEqual(z.builds, [], "Z never got r");
    } finally {
      w.close();
    }
    assert.deepEqual(browser.problems, []);
  });
});
