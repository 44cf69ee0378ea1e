import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { launchBrowser, signIn, type TestBrowser } from "./support/browser.ts";
import { seedFailedJob, type SeededJob } from "./support/seed-job.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

// Every page checked by axe-core (labels, roles, names, contrast…) in light and dark mode.
// axe is injected as a script, which the page's CSP would refuse: these pages bypass it.
const AXE_SOURCE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

interface Violation {
  id: string;
  impact: string;
  help: string;
  nodes: Array<{ target: string[] }>;
}

describe("dashboard accessibility (axe-core)", () => {
  let stack: TestStack;
  let job: SeededJob;
  let axe: string;
  const browsers: TestBrowser[] = [];

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    job = await seedFailedJob(stack.dynamodbEndpoint, { jobId: "j000000000001a11yjob00", rows: 60, logMegabytes: 0.1 });
    axe = await readFile(AXE_SOURCE, "utf8");
  });
  after(async () => {
    for (const browser of browsers) await browser.close();
    await stack?.cleanup();
  });

  const audit = async (page: Page, what: string) => {
    await page.addScriptTag({ content: axe });
    const violations = (await page.evaluate(`axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations)`)) as Violation[];
    const described = violations.map((v) => `${what}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    assert.deepEqual(described, []);
  };

  for (const colorScheme of ["light", "dark"] as const) {
    it(`has no violations on any page, ${colorScheme}`, async () => {
      const browser = await launchBrowser({ colorScheme, bypassCSP: true });
      browsers.push(browser);
      const page = await browser.newPage();
      await page.goto(`${stack.url}/sign-in`);
      await page.getByLabel("API token").waitFor();
      await audit(page, "sign-in");
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
        await audit(page, what);
      }
    });
  }
});
