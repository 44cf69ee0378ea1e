/** A built derivation's outputs read from its .drv: the same as `nix show-derivation` says, for real .drv files. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { parseDerivationOutputs, readDerivationOutputs } from "../src/derivation-outputs.ts";
import { showDerivations } from "../src/nix-closure.ts";

const run = promisify(execFile);
const NONCE = randomBytes(6).toString("hex");

describe("readDerivationOutputs", () => {
  let dir: string;
  const drvs: Record<string, string> = {};

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "nimbus-drv-outputs-"));
    const file = path.join(dir, "d.nix");
    // Several outputs, and attributes whose text needs escaping in the ATerm.
    await writeFile(
      file,
      `let mk = args: derivation ({ system = builtins.currentSystem; builder = "/bin/sh"; nonce = "${NONCE}"; } // args); in {
        one = mk { name = "one"; args = [ "-c" "echo > $out" ]; };
        many = mk { name = "many"; outputs = [ "out" "dev" "lib" ]; args = [ "-c" "echo \\"quoted\\" \\\\ back\\tslash\\n > $out" ]; note = "a\\nb\\"c\\\\"; };
      }`,
    );
    for (const name of ["one", "many"]) {
      try {
        drvs[name] = (await run("nix-instantiate", ["--option", "substituters", "", file, "-A", name])).stdout.trim();
      } catch (err) {
        throw new Error(`nix-instantiate failed — install Nix (Debian: apt-get install -y nix-bin): ${(err as Error).message}`);
      }
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const name of ["one", "many"]) {
    it(`says what nix show-derivation says: ${name}`, async () => {
      const drvPath = drvs[name]!;
      const shown = await showDerivations([drvPath], { optionArgs: [], env: process.env, signal: new AbortController().signal, message: (s) => s });
      const outputs = await readDerivationOutputs(drvPath);
      assert.deepEqual(outputs, shown.get(drvPath)!.outputs);
      assert.equal(Object.keys(outputs!).length, name === "many" ? 3 : 1);
    });
  }

  it("is undefined for a file that is not there, so the caller asks Nix", async () => {
    assert.equal(await readDerivationOutputs(`/nix/store/${"0".repeat(32)}-absent.drv`), undefined);
  });
});

describe("parseDerivationOutputs", () => {
  it("leaves out an output whose path is not known yet (floating content-addressed)", () => {
    assert.deepEqual(parseDerivationOutputs('Derive([("out","","r:sha256","")],[],[],"x86_64-linux","/bin/sh",[],[])'), {});
  });

  it("reads escaped text", () => {
    assert.deepEqual(parseDerivationOutputs('Derive([("o\\"u\\\\t","/nix/store/x-\\n","",""),("b","/nix/store/y","","")],[],[])'), { 'o"u\\t': "/nix/store/x-\n", b: "/nix/store/y" });
  });

  it("is undefined for anything not in the Derive form it reads", () => {
    for (const text of [
      "",
      "DrvWithVersion(\"xp-dyn-drv\",[(\"out\",\"/nix/store/x\",\"\",\"\")])",
      'Derive([("out","/nix/store/x","","")',
      'Derive([("out","/nix/store/x","")],[])',
      'Derive([("out","/nix/store/x","","");("b","","","")],[])',
      'Derive([("out","/nix/store/x',
      'Derive([(out,"/nix/store/x","","")],[])',
      "{\"out\": \"/nix/store/x\"}",
    ]) {
      assert.equal(parseDerivationOutputs(text), undefined, text);
    }
  });
});
