/**
 * What a malicious pull request could do with the cache machinery: its builders run as the
 * nixbld users (Debian's Nix has no sandbox), so they try to read the secrets the agent keeps
 * on disk while they exist — the signing key file during a push, the netrc, binary-caches.json.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, it } from "node:test";
import { generateSecretKey, writePrivateNetrc } from "../src/index.ts";
import { withPrivateFile } from "../src/private-file.ts";
import { NONCE, nixTestEnv, OFFLINE, run, tmpRoot } from "./nix-fixtures.ts";

let dir: string;
let env: NodeJS.ProcessEnv;
before(async () => {
  dir = await tmpRoot();
  // The agent's private directory: traversable only by root, like its state directory.
  await chmod(dir, 0o700);
  env = await nixTestEnv(dir);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Builds a derivation whose builder tries to read `file`; returns what it could read ("denied" if nothing). */
async function builderReads(file: string): Promise<string> {
  const expr = `derivation {
    name = "nimbus-hostile-read"; nonce = "${NONCE}-${randomBytes(4).toString("hex")}";
    system = builtins.currentSystem; builder = "/bin/sh";
    args = [ "-c" "if /bin/cat ${file} > $out 2>/dev/null; then :; else echo denied > $out; fi" ];
  }`;
  const exprFile = path.join(dir, `hostile-${randomBytes(4).toString("hex")}.nix`);
  await writeFile(exprFile, expr);
  const out = (await run("nix-build", [...OFFLINE, "--no-out-link", exprFile], { env })).trim();
  return (await readFile(out, "utf8")).trim();
}

it("a builder cannot read the signing key file while a push runs", async () => {
  const key = generateSecretKey("hostile-1");
  // Even under a world-readable parent (the default temporary directory) the key stays private.
  const parent = path.join("/tmp", `nimbus-open-${randomBytes(4).toString("hex")}`);
  await mkdir(parent, { mode: 0o755 });
  try {
    const read = await withPrivateFile(key.text, (file) => builderReads(file), parent);
    assert.equal(read, "denied");
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});

it("a builder cannot read the generated netrc", async () => {
  const parent = path.join("/tmp", `nimbus-open-${randomBytes(4).toString("hex")}`);
  await mkdir(parent, { mode: 0o755 });
  try {
    const file = await writePrivateNetrc(path.join(parent, "agent-secrets"), "machine x login authtoken password secret-token\n");
    assert.equal(await builderReads(file), "denied");
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});

it("the check is real: a builder does read a world-readable file", async () => {
  const file = path.join("/tmp", `nimbus-open-${randomBytes(4).toString("hex")}`);
  await writeFile(file, "visible\n", { mode: 0o644 });
  try {
    assert.equal(await builderReads(file), "visible");
  } finally {
    await rm(file, { force: true });
  }
});
