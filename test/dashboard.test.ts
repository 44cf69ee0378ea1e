import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { sendSignedPush } from "@nimbus/cli";
import type { BuildTask, EvaluationEvent } from "@nimbus/protocol";
import { launchBrowser, signIn, type TestBrowser } from "./support/browser.ts";
import { ScriptedAgent } from "./support/scripted-agent.ts";
import { eventually, startTestStack, type TestStack } from "./support/stack.ts";

// The dashboard in headless Chromium against a real local stack, a protocol-level agent
// building. NIMBUS_SCREENSHOTS=docs/images also writes the README's pictures.
const drv = (hash: string, name: string) => `/nix/store/${hash.padEnd(32, "0")}-${name}.drv`;
const GREETING = drv("0g", "greeting");
const SHOUT = drv("1s", "shout");
const BROKEN = drv("2b", "broken");
const SLOW = drv("3w", "slow");
const derivation = (drvPath: string, inputs: string[] = [], system = "x86_64-linux"): EvaluationEvent => ({
  kind: "derivation",
  drvPath,
  system,
  requiredFeatures: [],
  inputDrvs: inputs,
  outputs: { out: drvPath.replace(/\.drv$/, "") },
});
const attribute = (name: string, drvPath: string): EvaluationEvent => ({ kind: "attribute", path: [name], drvPath, attributeType: "regular", needsBuild: true });

const SAMPLE: EvaluationEvent[] = [
  derivation(GREETING),
  derivation(SHOUT, [GREETING]),
  derivation(BROKEN),
  attribute("greeting", GREETING),
  attribute("shout", SHOUT),
  attribute("broken", BROKEN),
];
const BROKEN_LOG = [
  "Running phase: unpackPhase",
  "unpacking source archive /nix/store/9x2k…-broken-src",
  "Running phase: configurePhase",
  "checking for gcc... gcc",
  "checking whether the C compiler works... yes",
  "Running phase: buildPhase",
  "build flags: SHELL=/nix/store/…-bash-5.2/bin/bash",
  "cc -O2 -c widget.c -o widget.o",
  "widget.c:42:5: error: 'frobnicate' undeclared (first use in this function)",
  "make: *** [Makefile:12: widget.o] Error 1",
  "error: builder for '/nix/store/2b…-broken.drv' failed with exit code 1",
];

/**
 * PHASE ONE: endpoints docs/dashboard-api.md adds are not served yet; the pages fall back
 * without them, but the browser still logs their 404s. Drop this when they exist.
 */
const NOT_YET_SERVED = [/\/api\/jobs\/[^/]+\/(attributes\?|summary\))/, /\/api\/derivations\/[^/?]+\)$/];
const unexpected = (problems: string[]) => problems.filter((p) => !(p.includes("404 (Not Found)") && NOT_YET_SERVED.some((r) => r.test(p))));

/** What a malicious pull request controls: attribute names, derivation names, log lines, error messages. */
const HOSTILE_MARKUP = `<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>`;
const HOSTILE = drv("4h", "hostile");
const HOSTILE_EVENTS: EvaluationEvent[] = [
  derivation(HOSTILE),
  attribute(HOSTILE_MARKUP, HOSTILE),
  { kind: "attribute-error", path: ["checks", HOSTILE_MARKUP], message: `error: ${HOSTILE_MARKUP}` },
];

function EVALUATE(task: { repository: string }): EvaluationEvent[] {
  if (task.repository === "acme/slow") return [derivation(SLOW, [], "aarch64-linux"), attribute("slow", SLOW)];
  if (task.repository === "mallory/evil") return HOSTILE_EVENTS;
  return SAMPLE;
}

function build(task: BuildTask) {
  if (task.drvPath === HOSTILE) return { status: "failed" as const, exitCode: 1, log: [HOSTILE_MARKUP, "\x1b[31mred\x1b[0m"] };
  if (task.drvPath === BROKEN) return { status: "failed" as const, exitCode: 1, log: BROKEN_LOG };
  return { status: "succeeded" as const, log: [`building ${task.drvPath}`, "done"] };
}

describe("dashboard in a browser", () => {
  let stack: TestStack;
  let agent: ScriptedAgent;
  /** Builds aarch64-linux slowly enough to be cancelled mid-build. */
  let slowAgent: ScriptedAgent;
  let browser: TestBrowser;
  let page: Page;
  const screenshots = process.env.NIMBUS_SCREENSHOTS;

  const push = async (repository: string, commit: string) => {
    const { status, body } = await sendSignedPush(stack.url, stack.secrets.GithubWebhookSecret, { repository, commit });
    assert.equal(status, 201, JSON.stringify(body));
    return body.jobId as string;
  };
  const shoot = async (name: string) => {
    if (!screenshots) return;
    await mkdir(screenshots, { recursive: true });
    // The page's content only, not the empty viewport below it.
    await page.locator("body").screenshot({ path: join(screenshots, `${name}.png`) });
  };

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    const { token } = await stack.createToken("dashboard");
    agent = ScriptedAgent.create("builder-1", { concurrentTasks: 2, labels: { rack: "r1" } }, { evaluate: EVALUATE, build, buildMs: 600 });
    slowAgent = ScriptedAgent.create("builder-arm", { systems: ["aarch64-linux"], concurrentTasks: 1 }, { evaluate: EVALUATE, build, buildMs: 120_000 });
    await agent.connect(stack.agentSocketUrl, token);
    await slowAgent.connect(stack.agentSocketUrl, token);
    browser = await launchBrowser();
    page = await browser.newPage();
  });
  after(async () => {
    await browser?.close();
    agent?.close();
    slowAgent?.close();
    await stack?.cleanup();
  });

  it("asks to sign in, then shows a job appear and finish on the jobs page", async () => {
    await page.goto(`${stack.url}/`);
    await page.getByRole("heading", { name: "Sign in to Nimbus" }).waitFor();
    await signIn(page, stack.url, stack.adminToken);
    await page.getByRole("heading", { name: "Jobs" }).waitFor();

    const jobId = await push("acme/widgets", "c0ffee".padEnd(40, "0"));
    const row = page.locator(`tr[data-job="${jobId}"]`);
    await row.waitFor({ timeout: 10_000 });
    assert.match(await row.innerText(), /acme\/widgets/);
    await row.locator(".status", { hasText: "failed" }).waitFor({ timeout: 20_000 });
    assert.deepEqual(unexpected(browser.problems), []);
  });

  it("opens the job with its counts and failures, then a failed derivation's log; back returns", async () => {
    const jobId = await page.locator("tr[data-job] a").first().innerText();
    await page.getByRole("link", { name: jobId }).click();
    await page.waitForURL(`${stack.url}/jobs/${jobId}`);
    await page.getByRole("heading", { name: `Job ${jobId}` }).waitFor();
    const filters = page.getByRole("navigation", { name: "Filter by status" });
    await filters.getByRole("link", { name: "failed 1" }).waitFor();
    assert.deepEqual(await filters.getByRole("link").allInnerTexts(), ["all 3", "failed 1", "succeeded 2"]);
    await page.getByRole("listbox", { name: "derivations" }).getByRole("option", { name: /shout/ }).waitFor();
    await shoot("job");

    await filters.getByRole("link", { name: "failed 1" }).click();
    await page.waitForURL(`${stack.url}/jobs/${jobId}?status=failed`);
    const failed = page.getByRole("listbox", { name: "failed derivations" }).getByRole("option");
    await failed.filter({ hasText: "broken" }).waitFor();
    assert.equal(await failed.count(), 1);
    assert.match(await failed.first().innerText(), /failed\s+broken\s+x86_64-linux\s+builder-1\s+builder failed with exit code 1/);

    // Keyboard: focus the list, Enter opens the active row.
    await page.getByRole("listbox", { name: "failed derivations" }).focus();
    await page.keyboard.press("Enter");
    await page.waitForURL((url) => url.pathname === `/derivations/${BROKEN.slice("/nix/store/".length)}`);
    const log = page.getByRole("listbox", { name: "log lines" });
    await log.getByText(BROKEN_LOG.at(-1)!).waitFor();
    assert.deepEqual(
      await log.getByRole("option").allInnerTexts(),
      BROKEN_LOG,
    );
    await page.getByLabel("Search the log").fill("ERROR");
    await page.getByRole("status").filter({ hasText: "1 of 3" }).waitFor();
    assert.deepEqual(await log.locator("mark").allInnerTexts(), ["error", "Error", "error"]);
    await page.getByLabel("Search the log").press("Enter");
    await page.getByRole("status").filter({ hasText: "2 of 3" }).waitFor();
    await shoot("log");

    await page.goBack();
    await page.waitForURL(`${stack.url}/jobs/${jobId}?status=failed`);
    await page.getByRole("listbox", { name: "failed derivations" }).getByRole("option").first().waitFor();
    await page.goBack();
    await page.waitForURL(`${stack.url}/jobs/${jobId}`);
    assert.deepEqual(unexpected(browser.problems), []);
  });

  it("cancels a running job", async () => {
    const jobId = await push("acme/slow", "5".repeat(40));
    await page.goto(`${stack.url}/jobs/${jobId}`);
    await page.getByRole("heading", { name: `Job ${jobId}` }).locator(".status", { hasText: "building" }).waitFor({ timeout: 10_000 });
    await page.getByRole("listbox", { name: "derivations" }).getByRole("option", { name: /building/ }).waitFor({ timeout: 10_000 });
    page.once("dialog", (dialog) => void dialog.accept());
    await page.getByRole("button", { name: "Cancel job" }).click();
    await page.getByRole("heading", { name: `Job ${jobId}` }).locator(".status", { hasText: "cancelled" }).waitFor({ timeout: 10_000 });
    const job = await stack.api("GET", `/api/jobs/${jobId}`);
    assert.equal(job.body.status, "cancelled");
    assert.equal(await page.getByRole("button", { name: "Cancel job" }).count(), 0);
    await eventually(async () => (slowAgent.cancelled.length === 1 ? true : undefined), "the agent to be told to stop the build");
    assert.deepEqual(unexpected(browser.problems), []);
  });

  it("shows what a hostile repository evaluates and prints as text, running none of it", async () => {
    const jobId = await push("mallory/evil", "6".repeat(40));
    await page.goto(`${stack.url}/jobs/${jobId}`);
    const errors = page.getByRole("region", { name: "Evaluation errors" });
    await errors.getByText(`error: ${HOSTILE_MARKUP}`).waitFor({ timeout: 20_000 });
    assert.match(await errors.innerText(), /checks\.<img src=x onerror="window\.pwned=1"><script>/);

    await page.getByRole("link", { name: "Attributes" }).click();
    await page.getByRole("listbox", { name: "attributes" }).getByRole("option", { name: /onerror/ }).first().waitFor();
    await page.goto(`${stack.url}/derivations/${HOSTILE.slice("/nix/store/".length)}`);
    const log = page.getByRole("listbox", { name: "log lines" });
    await log.getByRole("option").nth(1).waitFor({ timeout: 20_000 });
    assert.deepEqual(await log.getByRole("option").allInnerTexts(), [HOSTILE_MARKUP, "red"]);
    assert.equal(await page.evaluate("window.pwned"), undefined);
    assert.equal(await page.locator("main img, main script").count(), 0);
    assert.deepEqual(unexpected(browser.problems), []);
  });

  it("filters jobs by repository and branch, in the URL", async () => {
    await page.goto(`${stack.url}/`);
    await page.locator("tr[data-job]").nth(2).waitFor();
    await page.getByLabel("Repository").fill("acme/slow");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(`${stack.url}/?repository=acme%2Fslow`);
    await page.locator("tr[data-job]", { hasText: "acme/slow" }).waitFor();
    assert.deepEqual(await page.locator("tr[data-job] td:nth-child(3)").allInnerTexts(), ["acme/slow"]);
    await page.getByLabel("Branch").fill("nope");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.getByText("No job matches this filter.").waitFor();
    await page.goBack();
    await page.goBack();
    await page.waitForURL(`${stack.url}/`);
    await page.locator("tr[data-job]").nth(2).waitFor();
  });

  it("narrows a job's attributes by path prefix, in the URL", async () => {
    const jobId = await page.locator("tr[data-job]", { hasText: "acme/widgets" }).getAttribute("data-job");
    await page.goto(`${stack.url}/jobs/${jobId}?tab=attributes`);
    const attributes = page.getByRole("listbox", { name: "attributes" });
    await attributes.getByRole("option", { name: /shout/ }).waitFor();
    assert.equal(await attributes.getByRole("option").count(), 3);
    await page.getByLabel("Attribute path starts with").fill("gre");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(`${stack.url}/jobs/${jobId}?tab=attributes&prefix=gre`);
    await attributes.getByRole("option", { name: /greeting/ }).waitFor();
    assert.equal(await attributes.getByRole("option").count(), 1);
    assert.deepEqual(unexpected(browser.problems), []);
  });

  it("lists the connected agent", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Agents" }).click();
    const row = page.getByRole("row", { name: /builder-1/ });
    await row.waitFor();
    assert.match(await row.innerText(), /x86_64-linux[\s\S]*rack=r1/);
    assert.deepEqual(unexpected(browser.problems), []);
  });
});
