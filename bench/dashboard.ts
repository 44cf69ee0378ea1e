/**
 * `npm run bench:dashboard`: the dashboard on a job with 100,000 failed derivations, in headless
 * Chromium against the local stack — time to the first rows, to the rows in view after a jump
 * to the middle of the list, the longest main-thread task while flinging through it, and a
 * 20 MB log opened at its tail. The job is written straight into the tables (as a finished
 * job's items), so the numbers are the dashboard's and the read API's, not the build path's.
 * Prints the numbers and writes bench/results/dashboard.json; never asserts speed.
 *
 * Knobs: NIMBUS_BENCH_DASHBOARD_ROWS (100000), NIMBUS_BENCH_DASHBOARD_LOG_MB (20),
 * NIMBUS_BENCH_DASHBOARD_TIMEOUT_S (120, per measurement).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startLocalStack } from "@nimbus/local";
import { launchBrowser, signIn } from "../test/support/browser.ts";
import { seedFailedJob } from "../test/support/seed-job.ts";
import { machineInfo } from "./report.ts";

const env = (name: string, fallback: number) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(raw)}`);
  return value;
};
const ROWS = env("NIMBUS_BENCH_DASHBOARD_ROWS", 100_000);
const LOG_MB = env("NIMBUS_BENCH_DASHBOARD_LOG_MB", 20);
const TIMEOUT_MS = env("NIMBUS_BENCH_DASHBOARD_TIMEOUT_S", 120) * 1000;
const RESULTS = fileURLToPath(new URL("./results/dashboard.json", import.meta.url));

const JOB = "j000000000001dashbench";

// In-page probes, as source text: they run in the browser, which this file's types do not describe.
const FIRST_ROW = `(() => {
  const row = document.querySelector('[role="listbox"] [role="option"]:not(.pending)');
  return row ? performance.now() : false;
})()`;
const JUMP_TO_MIDDLE = `new Promise((resolve) => {
  const list = document.querySelector('[role="listbox"][aria-label="failed derivations"]');
  const start = performance.now();
  list.scrollTop = (list.scrollHeight - list.clientHeight) / 2;
  const check = () => {
    const top = list.scrollTop, bottom = top + list.clientHeight;
    const inView = [...list.querySelectorAll('[role="option"]')].filter((r) => r.offsetTop + r.offsetHeight > top && r.offsetTop < bottom);
    if (inView.length > 0 && inView.every((r) => !r.classList.contains("pending"))) {
      resolve({ ms: performance.now() - start, firstIndex: Number(inView[0].getAttribute("aria-posinset")) - 1 });
    } else requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})`;
/** Flings through the list for 3 s (a screenful and more per frame), recording long tasks and frame gaps. */
const FLING = `new Promise((resolve) => {
  const list = document.querySelector('[role="listbox"][aria-label="failed derivations"]');
  const tasks = [];
  const observer = new PerformanceObserver((entries) => entries.getEntries().forEach((e) => tasks.push(e.duration)));
  observer.observe({ type: "longtask", buffered: false });
  const start = performance.now();
  let last = start, longestFrame = 0, frames = 0, direction = 1;
  const step = (now) => {
    longestFrame = Math.max(longestFrame, now - last);
    last = now;
    frames++;
    if (list.scrollTop + list.clientHeight >= list.scrollHeight - 1) direction = -1;
    if (list.scrollTop <= 0) direction = 1;
    list.scrollTop += direction * 2400;
    if (now - start < 3000) requestAnimationFrame(step);
    else setTimeout(() => { observer.disconnect(); resolve({ longestTaskMs: Math.max(0, ...tasks), longTasks: tasks.length, longestFrameMs: longestFrame, frames }); }, 100);
  };
  requestAnimationFrame(step);
})`;

async function main() {
  const dataDir = await mkdtemp(join(tmpdir(), "nimbus-bench-dashboard-"));
  const stack = await startLocalStack({ port: 0, dataDir, sweepIntervalMs: 0, log: () => {} });
  const browser = await launchBrowser({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  try {
    const seedStart = performance.now();
    const { loggedDrv: failedDrv } = await seedFailedJob(stack.dynamodbEndpoint, { jobId: JOB, rows: ROWS, logMegabytes: LOG_MB });
    const seedSeconds = Math.round((performance.now() - seedStart) / 100) / 10;
    console.log(`seeded ${ROWS.toLocaleString("en")} failed derivations and a ${LOG_MB} MB log in ${seedSeconds} s`);

    // The API alone, as the page calls it.
    const api = async (path: string) => {
      const start = performance.now();
      const response = await fetch(`${stack.url}${path}`, { headers: { authorization: `Bearer ${stack.adminToken}` } });
      await response.arrayBuffer();
      return { status: response.status, ms: Math.round(performance.now() - start) };
    };
    const apiTimes = {
      jobView: await api(`/api/jobs/${JOB}`),
      jobSummary: await api(`/api/jobs/${JOB}/summary`),
      firstPage: await api(`/api/jobs/${JOB}/derivations?status=failed&limit=200`),
      middleRange: await api(`/api/jobs/${JOB}/derivations?status=failed&from=h000&to=h0g0&limit=200`),
      logTail: await api(`/api/derivations/${encodeURIComponent(failedDrv)}/log?limit=2000`),
    };

    const page = await browser.newPage();
    await signIn(page, stack.url, stack.adminToken);
    await page.goto(`${stack.url}/jobs/${JOB}?status=failed`, { waitUntil: "commit" });
    const firstRowsMs = Number(await (await page.waitForFunction(FIRST_ROW, undefined, { polling: "raf", timeout: TIMEOUT_MS })).jsonValue());
    const listSize = Number(await page.getAttribute('[role="option"]:not(.pending)', "aria-setsize"));
    const jump = await withTimeout(page.evaluate(JUMP_TO_MIDDLE) as Promise<{ ms: number; firstIndex: number }>, "the jump to the middle");
    const fling = (await page.evaluate(FLING)) as { longestTaskMs: number; longTasks: number; longestFrameMs: number; frames: number };

    const logPage = await browser.newPage();
    await signIn(logPage, stack.url, stack.adminToken);
    const logStart = performance.now();
    await logPage.goto(`${stack.url}/derivations/${failedDrv.slice("/nix/store/".length)}`);
    await logPage.getByRole("listbox", { name: "log lines" }).getByRole("option").first().waitFor({ timeout: TIMEOUT_MS });
    const logOpenMs = Math.round(performance.now() - logStart);

    const result = {
      when: new Date().toISOString(),
      machine: machineInfo(),
      rows: ROWS,
      seedSeconds,
      api: apiTimes,
      dashboard: {
        firstRowsMs: Math.round(firstRowsMs),
        listRows: listSize,
        jumpToMiddleMs: jump ? Math.round(jump.ms) : null,
        rowShownAfterJump: jump?.firstIndex ?? null,
        scroll: { ...fling, longestTaskMs: Math.round(fling.longestTaskMs), longestFrameMs: Math.round(fling.longestFrameMs) },
        logMegabytes: LOG_MB,
        logOpenMs,
      },
      problems: browser.problems.filter((p) => !p.includes("404 (Not Found)")),
    };
    print(result);
    await mkdir(join(RESULTS, ".."), { recursive: true });
    await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nresults: ${RESULTS}`);
  } finally {
    await browser.close();
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => {
      console.log(`WARNING: ${what} took over ${TIMEOUT_MS / 1000} s; reported as null`);
      resolve(undefined);
    }, TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function print(result: { api: Record<string, { status: number; ms: number }>; dashboard: Record<string, unknown>; problems: string[] }) {
  const d = result.dashboard as any;
  console.log("");
  console.log(`  API (ms)            ${Object.entries(result.api).map(([k, v]) => `${k} ${v.status === 200 ? v.ms : `HTTP ${v.status}`}`).join(", ")}`);
  console.log(`  first rows          ${d.firstRowsMs} ms after navigation (list of ${d.listRows} rows)`);
  console.log(`  jump to the middle  ${d.jumpToMiddleMs ?? "timed out"} ms until the rows in view were loaded (row ${d.rowShownAfterJump})`);
  console.log(`  fling for 3 s       longest main-thread task ${d.scroll.longestTaskMs} ms (${d.scroll.longTasks} over 50 ms), longest frame ${d.scroll.longestFrameMs} ms over ${d.scroll.frames} frames`);
  console.log(`  ${d.logMegabytes} MB log          first lines ${d.logOpenMs} ms after navigation`);
  for (const problem of result.problems) console.log(`  WARNING: ${problem}`);
}

await main();
