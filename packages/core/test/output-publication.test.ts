import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { UploadedPath } from "@nimbus/protocol";
import { outputClaims, publishedReport } from "../src/output-publication.ts";

const path = (hash: string, name: string) => `/nix/store/${hash.repeat(32).slice(0, 32)}-${name}`;
const claim = (storePath: string, references: string[] = []): UploadedPath => ({
  storePath,
  fileHash: `sha256:${"1".repeat(52)}`,
  fileSize: 10,
  compression: "zstd",
  narHash: `sha256:${"2".repeat(52)}`,
  narSize: 20,
  references,
});

const out = path("a", "out");
const dev = path("b", "dev");
const lib = path("c", "lib");
const other = path("d", "other");

describe("outputClaims: a result publishes its outputs' closure and nothing else", () => {
  it("outputs and the paths their claims refer to, transitively, are its own", () => {
    const claims = [claim(out, [lib, out]), claim(lib, []), claim(dev, [out])];
    const { own, foreign } = outputClaims({ out, dev }, claims);
    assert.deepEqual(own.map((c) => c.storePath), [out, lib, dev]);
    assert.deepEqual(foreign, []);
  });

  it("a claim no output reaches is foreign, even one that refers to an output", () => {
    const claims = [claim(out), claim(other, [out]), claim(lib)];
    const { own, foreign } = outputClaims({ out }, claims);
    assert.deepEqual(own.map((c) => c.storePath), [out]);
    assert.deepEqual(foreign.map((c) => c.storePath), [other, lib]);
  });

  it("no outputs: every claim is foreign", () => {
    assert.deepEqual(outputClaims(undefined, [claim(out)]).foreign.map((c) => c.storePath), [out]);
  });
});

describe("publishedReport: the verdicts decide the built-in cache's report", () => {
  const pushed = { cache: "nimbus", status: "pushed" as const, paths: 2, alreadyPresent: 1 };
  it("a refusal makes it failed, with the refusal's words", () => {
    assert.deepEqual(publishedReport("nimbus", pushed, [{ storePath: out, status: "refused", reason: "no" }], "cache \"nimbus\" refused the push: x"), {
      cache: "nimbus",
      status: "failed",
      reason: "cache \"nimbus\" refused the push: x",
    });
  });

  it("published: the agent's report, paths published meanwhile counted as already there", () => {
    const verdicts = [
      { storePath: out, status: "published" as const },
      { storePath: lib, status: "present" as const },
    ];
    assert.deepEqual(publishedReport("nimbus", pushed, verdicts, undefined), { ...pushed, paths: 1, alreadyPresent: 2 });
    assert.deepEqual(publishedReport("nimbus", undefined, verdicts, undefined), { cache: "nimbus", status: "pushed", paths: 1, alreadyPresent: 1 });
  });

  it("an agent's failed report stays failed", () => {
    const failed = { cache: "nimbus", status: "failed" as const, reason: "disk full" };
    assert.deepEqual(publishedReport("nimbus", failed, [{ storePath: out, status: "published" }], undefined), failed);
  });
});
