import { after, before, describe, it } from "node:test";
import { assertAccessibleLightAndDark } from "./support/axe.ts";
import { launchBrowser, signIn, type TestBrowser } from "./support/browser.ts";
import { seedFailedJob, type SeededJob } from "./support/seed-job.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

// Every page checked by axe-core (labels, roles, names, contrast…) in light and dark mode,
// each page loaded once (support/axe.ts switches the scheme on the loaded page).
// Pages showing a held job, cache problems and waiting builds are audited in
// dashboard-github.test.ts and dashboard-caches.test.ts.

describe("dashboard accessibility (axe-core)", () => {
  let stack: TestStack;
  let job: SeededJob;
  const browsers: TestBrowser[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    job = await seedFailedJob(stack.dynamodbEndpoint, { jobId: "j000000000001a11yjob00", rows: 60, logMegabytes: 0.1 });
  });
  after(async () => {
    for (const browser of browsers) await browser.close();
    await stack?.cleanup();
  });

  it("has no violations on any page, light and dark", async () => {
    const browser = await launchBrowser({ bypassCSP: true });
    browsers.push(browser);
    const page = await browser.newPage();
    await page.goto(`${stack.url}/sign-in`);
    await page.getByLabel("API token").waitFor();
    await assertAccessibleLightAndDark(page, "sign-in");
    await signIn(page, stack.url, stack.adminToken);

    const pages: Array<[string, string, () => Promise<void>]> = [
      ["jobs", "/", () => page.locator("tr[data-job]").first().waitFor()],
      ["job", `/jobs/${job.jobId}?status=failed`, () => page.getByRole("option", { name: /pkg-/ }).first().waitFor()],
      ["attributes", `/jobs/${job.jobId}?tab=attributes`, () => page.getByRole("option", { name: /pkg-/ }).first().waitFor()],
      ["derivation", `/derivations/${job.loggedDrv.slice("/nix/store/".length)}`, () => page.getByRole("listbox", { name: "log lines" }).getByRole("option").first().waitFor()],
      ["agents", "/agents", () => page.getByText("No agent is connected").waitFor()],
    ];
    for (const [what, path, ready] of pages) {
      await page.goto(`${stack.url}${path}`);
      await ready();
      await assertAccessibleLightAndDark(page, what);
    }
  });
});
