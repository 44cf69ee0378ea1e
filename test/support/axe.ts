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
  await page.addScriptTag({ content: await (source ??= readFile(AXE_SOURCE, "utf8")) });
  const violations = (await page.evaluate(`axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations)`)) as Violation[];
  const described = violations.map((v) => `${what}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(described, []);
}
