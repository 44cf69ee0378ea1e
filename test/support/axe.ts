import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import type { Page } from "playwright-core";

// axe is injected as a script, which the page's CSP would refuse: audited pages bypass it
// (launchBrowser's `bypassCSP`).
const AXE_SOURCE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
let source: Promise<string> | undefined;

interface Violation {
  id: string;
  impact: string;
  help: string;
  nodes: Array<{ target: string[] }>;
}

/** Runs axe-core on the page as it is (labels, roles, names, contrast…) and fails naming every violation. */
export async function assertAccessible(page: Page, what: string): Promise<void> {
  // Once per document: a page audited again (say, in the other colour scheme) keeps it.
  if (!(await page.evaluate(`typeof axe !== "undefined"`))) await page.addScriptTag({ content: await (source ??= readFile(AXE_SOURCE, "utf8")) });
  const violations = (await page.evaluate(`axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations)`)) as Violation[];
  const described = violations.map((v) => `${what}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(described, []);
}

/**
 * Audits the page as it is in light mode, then in dark: the dashboard's colour scheme is CSS
 * alone (a prefers-color-scheme query), so switching the emulated scheme on the loaded page
 * shows what a browser started dark would, without loading the page again. Leaves it light.
 */
export async function assertAccessibleLightAndDark(page: Page, what: string): Promise<void> {
  try {
    for (const colorScheme of ["light", "dark"] as const) {
      await page.emulateMedia({ colorScheme });
      assert.ok(await page.evaluate(`matchMedia("(prefers-color-scheme: ${colorScheme})").matches`), `${what}: the page is not in ${colorScheme} mode`);
      await assertAccessible(page, `${what}, ${colorScheme}`);
    }
  } finally {
    await page.emulateMedia({ colorScheme: "light" });
  }
}
