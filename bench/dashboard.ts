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
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand, DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { startLocalStack } from "@nimbus/local";
import {
  attributeKey,
  jobStatusKey,
  localResourceName,
  logChunk,
  type BuildLogItem,
  type DerivationItem,
  type JobAttributeItem,
  type JobDerivationItem,
  type JobItem,
  type TableName,
} from "@nimbus/service";
import { launchBrowser, signIn } from "../test/support/browser.ts";
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
const NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";
const randomHash = () => Array.from(randomBytes(32), (b) => NIX_BASE32[b % 32]).join("");
const at = new Date(Date.UTC(2026, 0, 1)).toISOString();

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
  const documents = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: stack.dynamodbEndpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
  const browser = await launchBrowser({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  try {
    const seedStart = performance.now();
    const failedDrv = await seed(documents);
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
    documents.destroy();
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** A finished job whose ROWS derivations all failed, each an attribute, and one long log. */
async function seed(documents: DynamoDBDocumentClient): Promise<string> {
  const job: JobItem = {
    jobId: JOB,
    listKey: "job",
    repository: "acme/monorepo",
    ref: "refs/heads/main",
    commit: "b".repeat(40),
    cloneUrl: "https://github.com/acme/monorepo.git",
    trigger: { event: "push", sender: "bench" },
    status: "failed",
    createdAt: at,
    updatedAt: at,
    finishedAt: at,
    evaluation: { status: "succeeded", taskId: `eval-${JOB}`, agent: "bench" },
  };
  await put(documents, "Jobs", [job]);
  const paths = Array.from({ length: ROWS }, (_, i) => `/nix/store/${randomHash()}-pkg-${i}.drv`);
  for (let i = 0; i < ROWS; i += 5_000) {
    const slice = paths.slice(i, i + 5_000);
    await put(
      documents,
      "Derivations",
      slice.map(
        (drvPath, j): DerivationItem => ({
          drvPath,
          system: "x86_64-linux",
          requiredFeatures: [],
          outputs: { out: drvPath.replace(/\.drv$/, "") },
          status: "failed",
          queueKey: "x86_64-linux",
          attempt: 1,
          builtBy: { hostname: `builder-${(i + j) % 8}`, connectionId: "c", labels: {} },
          failure: { reason: "builder failed with exit code 2", exitCode: 2 },
          createdAt: at,
          updatedAt: at,
          finishedAt: at,
        }),
      ),
    );
    await put(documents, "JobDerivations", slice.map((drvPath): JobDerivationItem => ({ jobId: JOB, drvPath, status: "failed", jobStatus: jobStatusKey(JOB, "failed") })));
    await put(
      documents,
      "JobAttributes",
      slice.map((drvPath, j): JobAttributeItem => {
        const path = ["packages", "x86_64-linux", `pkg-${i + j}`];
        return { jobId: JOB, attribute: attributeKey(path), path, drvPath };
      }),
    );
  }
  // LOG_MB of build output in 32 KB chunks, as agents send it.
  const line = "cc -O2 -Wall -c src/module.c -o build/module.o # " + "x".repeat(50);
  const perChunk = Math.floor(32_000 / (line.length + 1));
  const chunks = Math.ceil((LOG_MB * 1024 * 1024) / (perChunk * (line.length + 1)));
  const logs: BuildLogItem[] = Array.from({ length: chunks }, (_, seq) => ({
    drvPath: paths[0]!,
    chunk: logChunk(1, seq),
    lines: Array.from({ length: perChunk }, (_, n) => `${line} ${seq * perChunk + n}`),
  }));
  await put(documents, "BuildLogs", logs);
  return paths[0]!;
}

async function put(documents: DynamoDBDocumentClient, table: TableName, items: object[]): Promise<void> {
  const batches = Array.from({ length: Math.ceil(items.length / 25) }, (_, i) => items.slice(i * 25, i * 25 + 25));
  for (let i = 0; i < batches.length; i += 8) {
    await Promise.all(
      batches.slice(i, i + 8).map(async (batch) => {
        let request: Record<string, any> | undefined = {
          [localResourceName("nimbus", "local", table)]: batch.map((Item) => ({ PutRequest: { Item } })),
        };
        while (request && Object.keys(request).length > 0) {
          request = (await documents.send(new BatchWriteCommand({ RequestItems: request }))).UnprocessedItems;
        }
      }),
    );
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
