/**
 * Two separate stores on one host (test/support/separate-store.ts) build at the same time as two
 * machines would: Nix kills every process of the build user it takes before the build starts, so
 * stores that each had a user pool of their own took the same nixbld user and killed each
 * other's builders (signal 9). Every store locks the host's pool instead.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { createSeparateStore, type SeparateStore } from "./support/separate-store.ts";

describe("separate stores on one host", () => {
  const stores: SeparateStore[] = [];
  before(async () => {
    stores.push(await createSeparateStore(), await createSeparateStore());
  });
  after(async () => {
    for (const store of stores) await store.remove();
  });

  it("build at the same time without killing each other's builders", async () => {
    const nonce = randomBytes(6).toString("hex");
    // Each build starts, waits long enough for the other to start (and take a build user), then finishes.
    const expression = path.join(stores[0]!.root, `slow-${nonce}.nix`);
    await writeFile(
      expression,
      `derivation { name = "slow-${nonce}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "/bin/sleep 3; echo done > $out" ]; }`,
    );
    const builds = await Promise.all(stores.map((store) => store.run("nix-build", ["--no-out-link", expression])));
    for (const [i, build] of builds.entries()) assert.equal(build.code, 0, `store ${i}: ${build.stderr}`);
  });
});
