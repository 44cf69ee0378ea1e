import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Locator, Page } from "playwright-core";
import { launchBrowser, signIn, type TestBrowser } from "./support/browser.ts";
import { seedFailedJob, type SeededJob } from "./support/seed-job.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

// A finished job too long to render whole (its items written straight into the tables): the
// list renders only the rows in view, reaches any row by one request for its hash range, and
// keeps its place across back; a long log opens at its end and pages backwards.
// The 100,000-row version of this is `npm run bench:dashboard`.
const ROWS = 5_000;

describe("dashboard on a job of 5,000 failures", () => {
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

  it("counts by status from the job, and reaches the middle by a jump (one hash range read) and the end by the keyboard", async () => {
    const filters = page.getByRole("navigation", { name: "Filter by status" });
    assert.deepEqual(await filters.getByRole("link").allInnerTexts(), ["all 5,000", "failed 5,000"]);
    const requests: string[] = [];
    const record = (request: { url(): string }) => void requests.push(request.url());
    page.on("request", record);
    await list().evaluate((element) => {
      const box = element as unknown as { scrollTop: number; scrollHeight: number };
      box.scrollTop = box.scrollHeight / 2;
    });
    const middle = assertConsecutive(await rowsInView(list()));
    page.off("request", record);
    assert.ok(Math.abs(middle - ROWS / 2) < 100, `the jump shows row ${middle}`);
    const reads = requests.filter((url) => url.includes("/derivations?"));
    assert.ok(reads.length >= 1 && reads.length <= 4, `${reads.length} reads for the rows in view: ${reads.join(" ")}`);
    for (const url of reads) assert.match(url, /[?&]from=[0-9a-z]+/, "a hash range, not a page from the start");

    await list().focus();
    await page.keyboard.press("End");
    const last = list().locator('[aria-selected="true"]');
    await last.filter({ hasText: "pkg-" }).waitFor();
    assert.equal(await last.getAttribute("aria-posinset"), String(ROWS));
    assert.equal(await last.locator(".name").getAttribute("title"), job.drvPaths.at(-1));
    assert.deepEqual(browser.problems, []);
  });

  it("keeps its place when back from a derivation", async () => {
    await list().evaluate((element) => {
      (element as unknown as { scrollTop: number }).scrollTop = 32 * 700;
    });
    const before = await rowsInView(list());
    await list().getByRole("option").filter({ hasText: before[2]!.replace(/^.*?-/, "").replace(/\.drv$/, "") }).first().click();
    await page.waitForURL(/\/derivations\//);
    await page.goBack();
    await page.waitForURL(/\?status=failed$/);
    // The same rows, the first of them at the same height (the list's estimated positions may differ by a few rows).
    await page.waitForFunction((first) => {
      const box = (globalThis as any).document.querySelector('[role="listbox"][aria-label="failed derivations"]');
      const row = box && [...box.querySelectorAll('[role="option"]')].find((r: any) => r.offsetTop + r.offsetHeight > box.scrollTop);
      return row?.querySelector(".name")?.title === first;
    }, before[0]);
    assert.deepEqual(await rowsInView(list()), before);
  });

  it("opens a long log at its end, then loads earlier lines as it is scrolled up", async () => {
    await page.goto(`${stack.url}/derivations/${job.loggedDrv.slice("/nix/store/".length)}`);
    const log = page.getByRole("listbox", { name: "log lines" });
    await log.getByRole("option").first().waitFor();
    // The list scrolls to its end once the tail's rows are measured: wait for that, then look.
    await page.waitForFunction(() => {
      const box = (globalThis as any).document.querySelector('[role="listbox"][aria-label="log lines"]');
      return box && box.scrollHeight > box.clientHeight && box.scrollTop + box.clientHeight >= box.scrollHeight - 1;
    });
    const view = await log.evaluate((element) => {
      const box = element as unknown as { scrollTop: number; clientHeight: number; scrollHeight: number };
      return { top: box.scrollTop, height: box.clientHeight, total: box.scrollHeight };
    });
    assert.ok(view.top + view.height >= view.total - 1, `at the end: ${JSON.stringify(view)}`);
    const lastLine = (await log.getByRole("option").allInnerTexts()).at(-1)!;
    assert.equal(lastLine, job.logLines.at(-1));
    const held = Number(await log.getByRole("option").last().getAttribute("aria-setsize"));
    assert.ok(held >= 2000 && held < job.logLines.length, `the tail first: ${held} of ${job.logLines.length} lines`);
    await page.getByText("earlier lines load as you scroll up").waitFor();

    await log.evaluate((element) => {
      (element as unknown as { scrollTop: number }).scrollTop = 0;
    });
    await page.waitForFunction(
      (before) => Number((globalThis as any).document.querySelector('[aria-label="log lines"] [role="option"]')?.getAttribute("aria-setsize")) > before,
      held,
    );
    // Read together: the list may load another page while it stays at the top, and then both move.
    const { more, firstShown } = await log.evaluate((element) => {
      const first = (element as unknown as { querySelector(selector: string): { getAttribute(name: string): string | null; textContent: string | null } | null }).querySelector('[role="option"]');
      return { more: Number(first?.getAttribute("aria-setsize")), firstShown: first?.textContent ?? "" };
    });
    // The line in view stays where it was: older lines went in above it.
    assert.ok(job.logLines.indexOf(firstShown) >= job.logLines.length - more, `${JSON.stringify(firstShown)} is among the last ${more} of ${job.logLines.length} lines`);
    assert.equal(await log.getAttribute("aria-label"), "log lines");
    assert.deepEqual(browser.problems, []);
  });
});
