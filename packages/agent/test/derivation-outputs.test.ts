/**
 * A built derivation's outputs read from its .drv: the same as `nix show-derivation` says, for
 * real .drv files; and whether a build's inputs are all in the store (then Nix builds it
 * without asking the substituters first).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { inputsInStore, parseDerivationHead, parseDerivationOutputs, readDerivationOutputs } from "../src/derivation-outputs.ts";
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

describe("inputsInStore", () => {
  let dir: string;
  let drvs: Record<string, string>;
  let outs: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "nimbus-drv-inputs-"));
    const nonce = randomBytes(6).toString("hex");
    const file = path.join(dir, "d.nix");
    await writeFile(
      file,
      `let mk = name: script: derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh"; nonce = "${nonce}"; args = [ "-c" script ]; };
        input = derivation { name = "input"; system = builtins.currentSystem; builder = "/bin/sh"; nonce = "${nonce}"; outputs = [ "out" "dev" ]; args = [ "-c" "echo > $out; echo > $dev" ]; };
      in { inherit input; leaf = mk "leaf" "echo > $out"; user = mk "user" "echo \${input.dev} > $out"; }`,
    );
    drvs = {};
    outs = {};
    for (const name of ["input", "leaf", "user"]) {
      drvs[name] = (await run("nix-instantiate", ["--option", "substituters", "", file, "-A", name])).stdout.trim();
      outs[name] = (await run("nix-store", ["--query", "--outputs", drvs[name]!])).stdout.trim().split("\n")[0]!;
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("reads a .drv's input derivations and the outputs it uses, as nix show-derivation says", async () => {
    const shown = JSON.parse((await run("nix", ["--extra-experimental-features", "nix-command", "show-derivation", drvs.user!])).stdout)[drvs.user!];
    const head = parseDerivationHead(await readFile(drvs.user!, "utf8"));
    assert.deepEqual(head?.inputDrvs, shown.inputDrvs);
    assert.deepEqual(head?.inputDrvs, { [drvs.input!]: ["dev"] });
  });

  it("is true for a .drv in the store with no input derivations, though its own output is not built", async () => {
    assert.equal(await inputsInStore(drvs.leaf!), true);
  });

  it("is false while an output of an input derivation it uses is missing, true once it is there", async () => {
    await run("nix-store", ["--delete", outs.user!]).catch(() => undefined);
    const dev = (await run("nix-store", ["--query", "--outputs", drvs.input!])).stdout.trim().split("\n").find((p) => p.endsWith("-dev"))!;
    await run("nix-store", ["--delete", dev]).catch(() => undefined);
    assert.equal(await inputsInStore(drvs.user!), false);
    await run("nix-store", ["--realise", drvs.input!, "--option", "substituters", ""]);
    assert.equal(await inputsInStore(drvs.user!), true);
  });

  it("is false for a .drv that is not here, or a path that is not a .drv in the store (no other file is read)", async () => {
    for (const drvPath of [`/nix/store/${"0".repeat(32)}-absent.drv`, path.join(dir, "d.nix"), `/nix/store/../../${dir}/d.drv`, outs.leaf!]) {
      assert.equal(await inputsInStore(drvPath), false, drvPath);
    }
  });
});

describe("parseDerivationHead", () => {
  it("reads input derivations, and is undefined when they are not in the form it reads", () => {
    const outputs = '[("out","/nix/store/x","","")]';
    assert.deepEqual(parseDerivationHead(`Derive(${outputs},[("/nix/store/a.drv",["out","dev"]),("/nix/store/b.drv",[])],[],"x")`), {
      outputs: { out: "/nix/store/x" },
      inputDrvs: { "/nix/store/a.drv": ["out", "dev"], "/nix/store/b.drv": [] },
    });
    for (const text of [
      `Derive(${outputs})`,
      `Derive(${outputs},[("/nix/store/a.drv",["out"])`,
      `Derive(${outputs},[("/nix/store/a.drv","out")])`,
      `Derive(${outputs},[("/nix/store/a.drv",[out])])`,
      `Derive(${outputs},[(/nix/store/a.drv,["out"])])`,
    ]) {
      assert.equal(parseDerivationHead(text), undefined, text);
    }
  });
});
