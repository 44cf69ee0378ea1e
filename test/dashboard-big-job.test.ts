import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Locator, Page } from "playwright-core";
import { launchBrowser, signIn, type TestBrowser } from "./support/browser.ts";
import { seedFailedJob, type SeededJob } from "./support/seed-job.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

// A finished job too long to render whole (its items written straight into the tables): the
// list renders only the rows in view, reaches any row, and keeps its place across back.
// The 100,000-row version of this is `npm run bench:dashboard`.
const ROWS = 2_000;

describe("dashboard on a job of 2,000 failures", () => {
  let stack: TestStack;
  let browser: TestBrowser;
  let page: Page;
  let job: SeededJob;

  before(async () => {
    stack = await startTestStack({ sweepIntervalMs: 0 });
    job = await seedFailedJob(stack.dynamodbEndpoint, { jobId: "j000000000001bigjob000", rows: ROWS, logMegabytes: 2 });
    browser = await launchBrowser();
    page = await browser.newPage();
    await signIn(page, stack.url, stack.adminToken);
  });
  after(async () => {
    await browser?.close();
    await stack?.cleanup();
  });

  const list = () => page.getByRole("listbox", { name: "failed derivations" });
  /** The store paths of the rows in view, once they are all loaded. */
  const rowsInView = async (listbox: Locator) => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const rows = await listbox.evaluate((element) => {
        const box = element as unknown as { scrollTop: number; clientHeight: number; querySelectorAll(s: string): ArrayLike<any> };
        const top = box.scrollTop;
        const bottom = top + box.clientHeight;
        return Array.from(box.querySelectorAll('[role="option"]'))
          .filter((row) => row.offsetTop + row.offsetHeight > top && row.offsetTop < bottom)
          .map((row) => (row.classList.contains("pending") ? null : (row.querySelector(".name")?.title as string)));
      });
      if (rows.length > 0 && rows.every((r) => r !== null)) return rows as string[];
      await page.waitForTimeout(50);
    }
    throw new Error("the rows in view did not load");
  };
  /** Rows in view are consecutive rows of the whole sorted list: none missing, none twice. */
  const assertConsecutive = (shown: string[]) => {
    const first = job.drvPaths.indexOf(shown[0]!);
    assert.ok(first >= 0, `${shown[0]} is a row of the job`);
    assert.deepEqual(shown, job.drvPaths.slice(first, first + shown.length));
    return first;
  };

  it("opens at its first rows and renders only the rows in view", async () => {
    await page.goto(`${stack.url}/jobs/${job.jobId}?status=failed`);
    const shown = await rowsInView(list());
    assert.equal(assertConsecutive(shown), 0);
    assert.equal(await list().getByRole("option").first().getAttribute("aria-setsize"), String(ROWS));
    const rendered = await list().getByRole("option").count();
    assert.ok(rendered < 100, `${rendered} rows in the DOM for ${ROWS}`);
  });

  it("reaches the middle by a jump and the end by the keyboard", async () => {
    await list().evaluate((element) => {
      const box = element as unknown as { scrollTop: number; scrollHeight: number };
      box.scrollTop = box.scrollHeight / 2;
    });
    const middle = assertConsecutive(await rowsInView(list()));
    assert.ok(Math.abs(middle - ROWS / 2) < 100, `the jump shows row ${middle}`);

    await list().focus();
    await page.keyboard.press("End");
    const last = list().locator('[aria-selected="true"]');
    await last.filter({ hasText: "pkg-" }).waitFor();
    assert.equal(await last.getAttribute("aria-posinset"), String(ROWS));
    assert.equal(await last.locator(".name").getAttribute("title"), job.drvPaths.at(-1));
    assert.deepEqual(browser.problems.filter((p) => !p.includes("404")), []);
  });

  it("keeps its place when back from a derivation", async () => {
    await list().evaluate((element) => {
      (element as unknown as { scrollTop: number }).scrollTop = 32 * 700;
    });
    const before = await rowsInView(list());
    const scrollTop = await list().evaluate((element) => (element as unknown as { scrollTop: number }).scrollTop);
    await list().getByRole("option").filter({ hasText: before[2]!.replace(/^.*?-/, "").replace(/\.drv$/, "") }).first().click();
    await page.waitForURL(/\/derivations\//);
    await page.goBack();
    await page.waitForURL(/\?status=failed$/);
    assert.deepEqual(await rowsInView(list()), before);
    assert.equal(await list().evaluate((element) => (element as unknown as { scrollTop: number }).scrollTop), scrollTop);
  });

  it("opens a long log at its end", async () => {
    await page.goto(`${stack.url}/derivations/${job.loggedDrv.slice("/nix/store/".length)}`);
    const log = page.getByRole("listbox", { name: "log lines" });
    await log.getByRole("option").first().waitFor();
    const view = await log.evaluate((element) => {
      const box = element as unknown as { scrollTop: number; clientHeight: number; scrollHeight: number };
      return { top: box.scrollTop, height: box.clientHeight, total: box.scrollHeight };
    });
    assert.ok(view.top + view.height >= view.total - 1, `at the end: ${JSON.stringify(view)}`);
    const lastLine = (await log.getByRole("option").allInnerTexts()).at(-1)!;
    assert.match(lastLine, /# x+ \d+$/);
    const lines = await log.getAttribute("aria-label");
    assert.equal(lines, "log lines");
    assert.equal(await log.getByRole("option").last().getAttribute("aria-setsize"), "10000");
  });
});
