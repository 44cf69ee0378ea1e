/**
 * Uploads to the built-in cache at the protocol level (docs/protocol.md, "Uploads to the
 * built-in cache"), against the local stack's real S3 emulator and tables: what is published
 * is served signed by the service, and every kind of bad upload is refused and leaves nothing
 * visible; cache tokens open the cache and nothing else; retention keeps what is referred to
 * or recently used and removes the rest.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { fingerprintOf, narFileKey, parseNarinfo, parsePublicKey, verifyFingerprint } from "@nimbus/cache";
import { CacheInfoView, type ServiceMessage, type UploadedPath, type UploadSlot } from "@nimbus/protocol";
import { cacheCaller, collectCache } from "@nimbus/service";
import { dynamo, s3 } from "../packages/service/src/platform/aws-clients.ts";
import { payload, put, sha, slotsFor as uploadSlots, storePath } from "./support/cache-uploads.ts";
import { hello, newSession, RawAgent } from "./support/raw-agent.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
let agent: RawAgent;
let session: ReturnType<typeof newSession>;
let readToken: string;
let writeToken: string;

const slotsFor = (...claims: UploadedPath[]) => uploadSlots(agent, ...claims);

async function request(message: Record<string, unknown>): Promise<ServiceMessage> {
  return agent.request({ ...message, requestId: randomBytes(6).toString("hex") });
}

async function complete(...claims: UploadedPath[]) {
  const answer = await request({ type: "cache-upload-complete", paths: claims });
  assert.equal(answer.type, "cache-upload-result", JSON.stringify(answer));
  return (answer as Extract<ServiceMessage, { type: "cache-upload-result" }>).paths;
}

const narinfoStatus = async (path: string, token = readToken) =>
  (await fetch(`${stack.url}/cache/${path.slice(11, 43)}.narinfo`, { headers: { authorization: `Bearer ${token}` } })).status;

/** Uploads and publishes honestly; returns the claim. */
async function publish(path: string, references: string[] = []) {
  const p = payload(path, references);
  const [slot] = await slotsFor(p.claim);
  assert.equal(await put(slot!, p.file), 200);
  const [verdict] = await complete(p.claim);
  assert.equal(verdict?.status, "published", JSON.stringify(verdict));
  return p.claim;
}

before(async () => {
  stack = await startTestStack({ sweepIntervalMs: 0 });
  const { token } = await stack.createToken("uploads");
  agent = await RawAgent.connect(stack.agentSocketUrl, token);
  session = newSession();
  const welcome = await agent.request(hello({}, session));
  assert.equal(welcome.type, "welcome");
  assert.match((welcome as Extract<ServiceMessage, { type: "welcome" }>).cache?.publicKey ?? "", /^nimbus-local-1:/, "the welcome names the cache's key");
  readToken = (await stack.api("POST", "/api/cache/tokens", { access: "read" })).body.token;
  writeToken = (await stack.api("POST", "/api/cache/tokens", { access: "write" })).body.token;
});
after(async () => {
  agent?.close();
  await stack.cleanup();
});

describe("uploads over the agent protocol", () => {
  it("an honest upload is published and served signed by the service's key, its NAR through a presigned redirect", async () => {
    const p = payload(storePath("good"));
    const [slot] = await slotsFor(p.claim);
    assert.equal(slot!.status, "upload");
    const upload = slot as Extract<UploadSlot, { status: "upload" }>;
    assert.ok(upload.headers["x-amz-checksum-sha256"], "the URL binds the file's SHA-256");
    assert.equal(await narinfoStatus(p.claim.storePath), 404, "nothing is visible before completion");
    assert.equal(await put(slot!, p.file), 200);
    assert.equal(await narinfoStatus(p.claim.storePath), 404, "…nor after the upload alone");
    let lookups = 0;
    const count = "countCachePathLookups";
    dynamo().middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "BatchGetItemCommand" && JSON.stringify(args.input).includes("CachePaths")) lookups++;
        return next(args);
      },
      { step: "initialize", name: count },
    );
    const objectRequests: string[] = [];
    s3().middlewareStack.add(
      (next, context) => async (args) => {
        objectRequests.push(String(context.commandName));
        return next(args);
      },
      { step: "initialize", name: count },
    );
    try {
      assert.deepEqual(await complete(p.claim), [{ storePath: p.claim.storePath, status: "published" }]);
    } finally {
      dynamo().middlewareStack.remove(count);
      s3().middlewareStack.remove(count);
    }
    assert.equal(lookups, 0, "a path completed after its upload URL, referring to nothing, is not looked up first: checked and put");
    assert.deepEqual(objectRequests, ["GetObjectCommand"], "a file small enough to read back is read, not looked at first: its GET says its size");
    assert.deepEqual(await complete(p.claim), [{ storePath: p.claim.storePath, status: "present" }], "completing twice changes nothing");
    assert.equal((await slotsFor(p.claim))[0]!.status, "present", "a published path gets no second upload URL");

    const response = await fetch(`${stack.url}/cache/${p.claim.storePath.slice(11, 43)}.narinfo`, { headers: { authorization: `Bearer ${readToken}` } });
    const info = parseNarinfo(await response.text());
    const { publicKey } = CacheInfoView.parse((await stack.api("GET", "/api/cache")).body);
    assert.ok(verifyFingerprint(fingerprintOf(info), info.sigs, [parsePublicKey(publicKey)]), "signed by the key `nimbus cache info` shows");
    assert.equal(info.narHash, p.claim.narHash);
    const nar = await fetch(`${stack.url}/cache/${info.url}`, { headers: { authorization: `Bearer ${readToken}` }, redirect: "manual" });
    assert.equal(nar.status, 302);
    const downloaded = Buffer.from(await (await fetch(nar.headers.get("location")!)).arrayBuffer());
    assert.ok(downloaded.equals(p.file), "the redirect serves the uploaded file");
    assert.equal((await fetch(`${stack.url}/cache/${info.url}`, { redirect: "manual" })).status, 401, "NAR files need a credential too");
  });

  it("refuses a file whose hash is not the one claimed, a wrong size, a missing or truncated upload, a wrong NarHash — and publishes none of them", async () => {
    const wrongBytes = payload(storePath("wrong-hash"));
    const [s1] = await slotsFor(wrongBytes.claim);
    const other = Buffer.from(wrongBytes.file);
    other[other.length - 1] = other[other.length - 1]! ^ 0xff;
    await put(s1!, other);
    const wrongSize = payload(storePath("wrong-size"));
    const [s2] = await slotsFor(wrongSize.claim);
    await put(s2!, Buffer.concat([wrongSize.file, Buffer.from("extra")]));
    const missing = payload(storePath("never-uploaded"));
    await slotsFor(missing.claim);
    const truncated = payload(storePath("truncated"), [], 200_000);
    const [s4] = await slotsFor(truncated.claim);
    await put(s4!, truncated.file, { truncate: true });
    const lying = payload(storePath("wrong-narhash"));
    const [s5] = await slotsFor(lying.claim);
    await put(s5!, lying.file);
    lying.claim.narHash = sha(randomBytes(8));

    const verdicts = await complete(wrongBytes.claim, wrongSize.claim, missing.claim, truncated.claim, lying.claim);
    const reasons = verdicts.map((v) => (v.status === "refused" ? v.reason : `not refused: ${v.status}`));
    assert.match(reasons[0]!, /SHA-256 is not the FileHash claimed/);
    assert.match(reasons[1]!, /has \d+ bytes, not the \d+ claimed/);
    assert.match(reasons[2]!, /was not uploaded/);
    assert.match(reasons[3]!, /was not uploaded|bytes, not the|SHA-256 is not/);
    assert.match(reasons[4]!, /does not have the NarHash claimed/);
    for (const claim of [wrongBytes, wrongSize, missing, truncated, lying].map((p) => p.claim)) {
      assert.equal(await narinfoStatus(claim.storePath), 404, `${claim.storePath} is not visible`);
    }
    assert.equal(CacheInfoView.parse((await stack.api("GET", "/api/cache")).body).pathCount, 1, "only the honest path of the test before counts");
  });

  it("past the size it reads back, the service relies on the SHA-256 S3 checked at upload: a file put without it is refused", async () => {
    process.env.NIMBUS_CACHE_VERIFY_READ_BYTES = "0";
    try {
      const signed = payload(storePath("checked-by-s3"));
      const [slot] = await slotsFor(signed.claim);
      await put(slot!, signed.file);
      assert.equal((await complete(signed.claim))[0]!.status, "published");
      const unsigned = payload(storePath("no-checksum"));
      const [s2] = await slotsFor(unsigned.claim);
      await put(s2!, unsigned.file, { headers: { "x-amz-checksum-sha256": "" } });
      const [verdict] = await complete(unsigned.claim);
      assert.equal(verdict!.status, "refused");
      assert.match((verdict as { reason: string }).reason, /S3 holds no SHA-256/);
    } finally {
      delete process.env.NIMBUS_CACHE_VERIFY_READ_BYTES;
    }
  });

  it("one completion publishes the paths that do not refer to each other together, and a path after the one it refers to, in whatever order they came", async () => {
    const base = payload(storePath("base"));
    const top = payload(storePath("top"), [base.claim.storePath]);
    const siblings = Array.from({ length: 6 }, (_, i) => payload(storePath(`sibling-${i}`)));
    const all = [top, ...siblings, base];
    const slots = await slotsFor(...all.slice(0, 8).map((p) => p.claim));
    for (const [i, slot] of slots.entries()) assert.equal(await put(slot, all[i]!.file), 200);
    const totals = async () => CacheInfoView.parse((await stack.api("GET", "/api/cache")).body);
    const before = await totals();
    const verdicts = await complete(...all.map((p) => p.claim));
    assert.deepEqual(
      verdicts,
      all.map((p) => ({ storePath: p.claim.storePath, status: "published" })),
      "top, sent before the path it refers to, is published after it; answers in the order sent",
    );
    for (const p of all) assert.equal(await narinfoStatus(p.claim.storePath), 200);
    const sum = (key: "fileSize" | "narSize") => all.reduce((total, p) => total + p.claim[key], 0);
    const after = await totals();
    assert.deepEqual(
      [after.pathCount - before.pathCount, after.fileBytes - before.fileBytes, after.narBytes - before.narBytes],
      [all.length, sum("fileSize"), sum("narSize")],
      "the totals count each path published once",
    );

    // Completed again, with one new path beside them: the published ones are present and count no more.
    const extra = payload(storePath("extra"));
    const [extraSlot] = await slotsFor(extra.claim);
    assert.equal(await put(extraSlot!, extra.file), 200);
    const again = await complete(siblings[0]!.claim, extra.claim, base.claim);
    assert.deepEqual(again.map((v) => v.status), ["present", "published", "present"]);
    const last = await totals();
    assert.deepEqual([last.pathCount - after.pathCount, last.fileBytes - after.fileBytes], [1, extra.claim.fileSize]);
  });

  // A fleet's completions would all write one totals item: they add to one of its shards, and a read sums them all.
  it("keeps the totals in shards, each completion adding to one, and sums them (with the item's own from before shards) when read", async () => {
    const totals = async () => CacheInfoView.parse((await stack.api("GET", "/api/cache")).body);
    const main = async () => (await stack.scan("CacheStats")).find((item) => item.statsKey === "cache");
    const shards = async () => (await stack.scan("CacheStats")).filter((item) => /^cache#\d+$/.test(String(item.statsKey)));
    const mainCount = async () => Number((await main())?.pathCount ?? 0);
    const before = { totals: await totals(), main: await mainCount() };
    const paths = Array.from({ length: 12 }, (_, i) => payload(storePath(`sharded-${i}`)));
    for (const p of paths) {
      const [slot] = await slotsFor(p.claim);
      assert.equal(await put(slot!, p.file), 200);
      assert.deepEqual((await complete(p.claim)).map((v) => v.status), ["published"]);
    }
    assert.equal(await mainCount(), before.main, "the one item's totals are not written");
    assert.ok((await shards()).length > 1, "twelve completions went to more than one shard");
    const after = await totals();
    assert.equal(after.pathCount - before.totals.pathCount, paths.length);
    const stored = [...(await shards()), (await main()) ?? {}].reduce((total, item) => total + Number(item.pathCount ?? 0), 0);
    assert.equal(after.pathCount, stored, "the API's count is every shard's and the item's own together");

    // Totals an earlier version kept on the one item still count.
    await stack.putItems("CacheStats", [{ ...((await main()) ?? { statsKey: "cache" }), pathCount: before.main + 5 }]);
    assert.equal((await totals()).pathCount, after.pathCount + 5);
    await stack.putItems("CacheStats", [{ ...(await main())!, pathCount: before.main }]);
  });

  it("refuses paths outside the store directory and paths whose references are not in the cache", async () => {
    const outside = { ...payload(storePath("x")).claim, storePath: "/tmp/evil" };
    const [slot] = await slotsFor(outside);
    assert.deepEqual(slot, { storePath: "/tmp/evil", status: "refused", reason: "not a store path under /nix/store" });
    const escaping = payload(storePath("escape"), ["/nix/store/../../etc/passwd"]).claim;
    assert.match(JSON.stringify(await complete(escaping)), /is not a store path under \/nix\/store/);
    const orphan = payload(storePath("orphan"), [storePath("not-pushed")]);
    const [s] = await slotsFor(orphan.claim);
    await put(s!, orphan.file);
    const [verdict] = await complete(orphan.claim);
    assert.match((verdict as { reason: string }).reason, /refers to 1 path\(s\) not in the cache/);
    assert.equal(await narinfoStatus(orphan.claim.storePath), 404);

    const before = agent.messages.length;
    agent.send({ type: "cache-upload-request", requestId: "x", files: [{ storePath: storePath("y"), fileHash: "md5:nope", fileSize: 1, compression: "zstd" }] });
    const error = await agent.next(before);
    assert.equal(error.type, "error");
    assert.match((error as { message: string }).message, /fileHash/);
  });
});

describe("the agent's uploader", () => {
  it("uploads real store paths in overlapping batches, references first, and counts what the cache already had", async () => {
    const { execFile } = await import("node:child_process");
    const { mkdtemp, rm, writeFile } = await import("node:fs/promises");
    const os = await import("node:os");
    const { join } = await import("node:path");
    const { promisify } = await import("node:util");
    const { localPathInfos, uploadToBuiltinCache } = await import("@nimbus/cache");
    const run = promisify(execFile);
    const dir = await mkdtemp(join(os.tmpdir(), "nimbus-uploader-"));
    try {
      // Eleven leaves (two batches of at most 8 in the first round) and a top that refers to two of them (a second round).
      const nonce = randomBytes(6).toString("hex");
      await writeFile(
        join(dir, "u.nix"),
        `let mk = name: script: derivation { inherit name; nonce = "${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };
             leaves = builtins.genList (i: mk "uploader-leaf-\${toString i}" "echo \${toString i} > $out") 11;
         in leaves ++ [ (mk "uploader-top" "echo \${builtins.elemAt leaves 0} \${builtins.elemAt leaves 1} > $out") ]`,
      );
      let paths: string[];
      try {
        const drvs = (await run("nix-instantiate", ["--option", "substituters", "", join(dir, "u.nix")])).stdout.trim().split("\n");
        paths = (await run("nix-store", ["--option", "substituters", "", "--realise", ...drvs])).stdout.trim().split("\n");
      } catch (err) {
        throw new Error(`building the paths needs Nix (Debian: apt-get install -y nix-bin): ${(err as Error).message}`);
      }
      assert.equal(paths.length, 12);
      const infos = await localPathInfos(paths);
      assert.equal(infos.get(paths[11]!)!.references.length, 2, "the top refers to two leaves");
      const channel = {
        requestUploads: async (files: unknown[]) => ((await request({ type: "cache-upload-request", files })) as Extract<ServiceMessage, { type: "cache-upload-urls" }>).files,
        complete: async (claims: unknown[]) => ((await request({ type: "cache-upload-complete", paths: claims })) as Extract<ServiceMessage, { type: "cache-upload-result" }>).paths,
      };
      // As a build pushes its outputs: the last completion (the top's round) is left for its result to carry.
      const first = await uploadToBuiltinCache(paths, infos, channel, { tempDir: dir, concurrency: 4, publishLater: true });
      assert.deepEqual({ ...first, unpublished: first.unpublished?.map((c) => c.storePath) }, { uploaded: 12, alreadyPresent: 0, unpublished: [paths[11]] });
      assert.equal(await narinfoStatus(paths[11]!), 404, "the top is uploaded, not published: its result publishes it");
      for (const path of paths.slice(0, 11)) assert.equal(await narinfoStatus(path), 200, `${path} is published`);
      assert.deepEqual(await complete(...first.unpublished!), [{ storePath: paths[11], status: "published" }]);
      const again = await uploadToBuiltinCache(paths, infos, channel, { tempDir: dir, concurrency: 4 });
      assert.deepEqual(again, { uploaded: 0, alreadyPresent: 12 }, "the second time, every path is already there and nothing is put");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("credentials", () => {
  it("a cache token opens the cache and nothing else; a read token cannot write; revoked and expired ones are refused", async () => {
    assert.equal((await stack.api("GET", "/api/jobs", undefined, writeToken)).status, 401, "no JSON API");
    await assert.rejects(RawAgent.connect(stack.agentSocketUrl, writeToken), /HTTP 401/, "no agent socket");
    const narinfo = "StorePath: /nix/store/00000000000000000000000000000000-x\nURL: nar/x.nar\nCompression: none\nNarHash: sha256:1111111111111111111111111111111111111111111111111111\nNarSize: 1\nReferences: \n";
    const put = (token: string) => fetch(`${stack.url}/cache/00000000000000000000000000000000.narinfo`, { method: "PUT", body: narinfo, headers: { authorization: `Bearer ${token}` } });
    assert.equal((await put(readToken)).status, 403);
    const bad = await put(writeToken);
    assert.equal(bad.status, 400, "a write token gets to the checks, which refuse this narinfo");

    const created = await stack.api("POST", "/api/cache/tokens", { access: "read", expiresInSeconds: 60 });
    const later = new Date(Date.now() + 61_000);
    const asHeader = { authorization: `Bearer ${created.body.token}` };
    assert.equal((await cacheCaller(asHeader)).ok, true);
    assert.deepEqual(await cacheCaller(asHeader, later), { ok: false, status: 401, reason: `cache token expired at ${created.body.expiresAt}` });
    await stack.api("DELETE", `/api/cache/tokens/${created.body.id}`);
    assert.equal((await fetch(`${stack.url}/cache/missing`, { method: "POST", headers: { ...asHeader, "content-type": "application/json" }, body: JSON.stringify({ storePaths: [storePath("z")] }) })).status, 401);
  });

  it("an agent reads with its session's read key, which ends with the session; the session secret itself is not a credential", async () => {
    const { sessionCacheKeyFromSecret } = await import("@nimbus/cache");
    const basic = (login: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${login}:${password}`).toString("base64")}` });
    assert.deepEqual(await cacheCaller(basic(session.id, sessionCacheKeyFromSecret(session.secret))), { ok: true, access: "read", who: `session ${session.id}` });
    assert.equal((await cacheCaller(basic(session.id, session.secret))).ok, false);
    const other = await RawAgent.connect(stack.agentSocketUrl, (await stack.createToken("leaving")).token);
    const leaving = newSession();
    await other.request(hello({ hostname: "leaving" }, leaving));
    const key = basic(leaving.id, sessionCacheKeyFromSecret(leaving.secret));
    assert.equal((await cacheCaller(key)).ok, true);
    other.send({ type: "goodbye" });
    const { eventually } = await import("./support/stack.ts");
    await eventually(async () => ((await cacheCaller(key)).ok ? undefined : true), "the session's access to end");
    other.close();
  });
});

describe("retention", () => {
  it("walks the paths least recently used first across the index's shards, a batch per run, going on where the last stopped", async () => {
    const paths: string[] = [];
    for (let i = 0; i < 9; i++) {
      paths.push((await publish(storePath(`lru-${i}`))).storePath);
      await new Promise((resolve) => setTimeout(resolve, 3)); // each its own lastUsedAt
    }
    const inAMonth = new Date(Date.now() + 31 * 24 * 3600 * 1000);
    process.env.NIMBUS_CACHE_COLLECT_BATCH = "4";
    try {
      const gone = async () => (await Promise.all(paths.map(async (p) => (await narinfoStatus(p)) === 404))).map((g, i) => (g ? i : -1)).filter((i) => i >= 0);
      const before = new Set(await gone());
      const removed: number[][] = [];
      // Paths the file's other tests published are older: their batches come first.
      for (let run = 0; run < 30 && (await gone()).length < paths.length; run++) {
        await collectCache(inAMonth);
        removed.push((await gone()).filter((i) => !before.has(i) && !removed.flat().includes(i)));
      }
      assert.deepEqual(removed.flat().sort((a, b) => a - b), paths.map((_, i) => i).filter((i) => !before.has(i)), "every one goes in the end");
      const firstRun = removed.find((r) => r.length > 0) ?? [];
      assert.ok(firstRun.length <= 4, `at most a batch a run (${firstRun})`);
      assert.ok(Math.max(...firstRun) < Math.min(...removed.flat().filter((i) => !firstRun.includes(i)), Infinity), `the least recently used first (${JSON.stringify(removed)})`);
    } finally {
      delete process.env.NIMBUS_CACHE_COLLECT_BATCH;
    }
  });

  it("removes unused paths nothing refers to, oldest first; keeps what a published path refers to and what was asked for recently", async () => {
    const base = await publish(storePath("lib"));
    const app = await publish(storePath("app"), [base.storePath]);
    const used = await publish(storePath("used"));
    const day = 24 * 3600 * 1000;
    const inAMonth = new Date(Date.now() + 31 * day);
    // An evaluation asking for `used` a month on marks it used then.
    process.env.NIMBUS_CACHE_COLLECT_BATCH = "1000";
    try {
      const { touchStale } = await import("../packages/service/src/flow/cache-presence.ts");
      await touchStale([{ storeHash: used.storePath.slice(11, 43), lastUsedAt: new Date(0).toISOString() }], inAMonth);
      const first = await collectCache(inAMonth);
      assert.ok(first.cachePathsRemoved >= 1);
      assert.equal(await narinfoStatus(app.storePath), 404, "app, unused and unreferenced, is gone");
      const appFile = await fetch(`${stack.url}/cache/${narFileKey(app.fileHash, "zstd")}`, { method: "HEAD", headers: { authorization: `Bearer ${readToken}` } });
      assert.equal(appFile.status, 404, "…and its NAR file with it");
      assert.equal(await narinfoStatus(base.storePath), 200, "lib stayed while app referred to it");
      assert.equal(await narinfoStatus(used.storePath), 200, "used was asked for within the retention");
      await collectCache(inAMonth);
      assert.equal(await narinfoStatus(base.storePath), 404, "lib goes once nothing refers to it");
      assert.equal(await narinfoStatus(used.storePath), 200);
      const info = CacheInfoView.parse((await stack.api("GET", "/api/cache")).body);
      assert.equal(info.lastCollection?.at, inAMonth.toISOString());
      assert.equal(info.pathCount, 1, "only `used` is left");
    } finally {
      delete process.env.NIMBUS_CACHE_COLLECT_BATCH;
    }
  });
});
