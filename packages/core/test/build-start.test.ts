import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BUILD_START_BYTES,
  BUILT_INPUT_BYTES,
  buildStartOf,
  builtInputOf,
  INPUTS_BUDGET_BYTES,
  inputsAtHand,
  keptOnItem,
  taskInputs,
  type BuiltInput,
} from "../src/build-start.ts";

const drv = (name: string) => `/nix/store/${name.padEnd(32, "0")}-${name}.drv`;
const entry = (name: string, sources?: string[]): BuiltInput => ({ drvPath: drv(name), outputs: [`/nix/store/${name}-out`], ...(sources ? { sources } : {}) });

describe("what a build's start needs", () => {
  it("takes an input's entry from its item: output paths and sources, sorted", () => {
    assert.deepEqual(builtInputOf({ drvPath: drv("a"), outputs: { out: "/nix/store/z-out", dev: "/nix/store/a-dev" }, sources: new Set(["store:h/aaaaaaaaaaaa", "cache:c"]) }), {
      drvPath: drv("a"),
      outputs: ["/nix/store/a-dev", "/nix/store/z-out"],
      sources: ["cache:c", "store:h/aaaaaaaaaaaa"],
    });
    assert.equal(builtInputOf({ drvPath: drv("b"), outputs: { out: "/nix/store/b" } }).sources, undefined, "no sources: none kept");
  });

  it("keeps on the item only an entry within its bound", () => {
    assert.ok(keptOnItem(entry("small", ["cache:c"])));
    const outputs = Array.from({ length: 20 }, (_, i) => `/nix/store/${"x".repeat(40)}-out${i}`);
    assert.ok(!keptOnItem({ drvPath: drv("many"), outputs }), `more than ${BUILT_INPUT_BYTES} bytes`);
  });

  it("has every input at hand only when the item lists them all on it and each has an entry there or known", () => {
    const a = entry("a", ["cache:c"]);
    const b = entry("b");
    const inputs = new Set([a.drvPath, b.drvPath]);
    assert.deepEqual(inputsAtHand({ inputsOnItem: true, inputs, inputsBuilt: [b, a] }), [a, b]);
    assert.deepEqual(inputsAtHand({ inputsOnItem: true, inputs, inputsBuilt: [a] }, [b]), [a, b], "the input a settle just settled");
    assert.equal(inputsAtHand({ inputsOnItem: true, inputs, inputsBuilt: [a] }), undefined, "one entry left out: read");
    assert.equal(inputsAtHand({ inputs, inputsBuilt: [a, b] }), undefined, "inputs kept as rows");
    assert.equal(inputsAtHand({ inputsOnItem: true, inputRows: true, inputs, inputsBuilt: [a, b] }), undefined, "a later registration added rows");
    assert.deepEqual(inputsAtHand({ inputsOnItem: true }), [], "no inputs at all");
    assert.deepEqual(inputsAtHand({ inputsOnItem: true, inputs: new Set([a.drvPath]) }, [a, b]), [a], "known inputs it does not list are left out");
  });

  it("tells the agent the inputs' outputs within one frame's budget, and the caches holding them", () => {
    const shared = { drvPath: drv("s"), outputs: ["/nix/store/s-out", "/nix/store/s-dev"], sources: ["cache:one", "store:h/aaaaaaaaaaaa"] };
    const other = { drvPath: drv("o"), outputs: ["/nix/store/s-out"], sources: ["cache:two", "cache:one"] };
    assert.deepEqual(taskInputs([shared, other]), { inputs: ["/nix/store/s-dev", "/nix/store/s-out"], inputCaches: ["one", "two"] });
    assert.deepEqual(taskInputs([]), {});
    const many = Array.from({ length: 1000 }, (_, i) => ({ drvPath: drv(`m${i}`), outputs: [`/nix/store/${String(i).padStart(4, "0")}${"m".repeat(60)}`] }));
    const { inputs = [] } = taskInputs(many);
    assert.ok(inputs.length < 1000 && inputs.reduce((n, p) => n + p.length + 3, 0) <= INPUTS_BUDGET_BYTES, "cut at the budget");
  });

  it("carries placement and the build's inputs in the message, unless they would not fit", () => {
    const a = entry("a", ["cache:c"]);
    const start = buildStartOf({ system: "x86_64-linux", requiredFeatures: ["kvm"], needs: [["substituter:https://cache.nixos.org"]] }, [a]);
    assert.deepEqual(start, {
      system: "x86_64-linux",
      requiredFeatures: ["kvm"],
      needs: [["cache:c"], ["substituter:https://cache.nixos.org"]],
      inputs: [a.outputs[0]],
      inputCaches: ["c"],
    });
    const huge = Array.from({ length: 256 }, (_, i) => Array.from({ length: 64 }, (_, j) => `substituter:https://cache-${i}-${j}.example.org/`));
    assert.equal(buildStartOf({ system: "x86_64-linux", requiredFeatures: [], needs: huge }, []), undefined, `over ${BUILD_START_BYTES} bytes: the claim reads`);
  });
});
