/**
 * The layout's rules (docs/architecture.md), checked by dependency-cruiser over the packages'
 * sources and the handlers: no import cycle anywhere, core stays free of I/O, and the service's
 * layers only import downwards (platform ← storage ← flow ← edges).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { cruise, type ICruiseResult, type IForbiddenRuleType } from "dependency-cruiser";

const root = fileURLToPath(new URL("..", import.meta.url));
const service = "^packages/service/src/";

const RULES: IForbiddenRuleType[] = [
  {
    name: "no-cycles",
    comment: "an import cycle hides which module depends on which; break it by moving the shared part down a layer",
    severity: "error",
    from: {},
    to: { circular: true },
  },
  {
    name: "core-is-pure",
    comment: "packages/core holds the rules as pure functions: no AWS SDK, no file, network or process access",
    severity: "error",
    from: { path: "^packages/core/src/" },
    to: { path: ["@aws-sdk", "^node:(fs|net|http|https|child_process|dgram|worker_threads)", "^packages/(service|local|agent|cli)/"] },
  },
  {
    name: "platform-is-the-bottom",
    comment: "platform/ (resources, clients, knobs) knows nothing of the layers above it",
    severity: "error",
    from: { path: `${service}platform/` },
    to: { path: `${service}(storage|flow|edges)/` },
  },
  {
    name: "storage-does-not-decide",
    comment: "storage/ reads and writes; the flows that use it live above it",
    severity: "error",
    from: { path: `${service}storage/` },
    to: { path: `${service}(flow|edges)/` },
  },
  {
    name: "flow-does-not-answer",
    comment: "flow/ is what happens; edges/ turn requests into flows and answers, never the other way",
    severity: "error",
    from: { path: `${service}flow/` },
    to: { path: `${service}edges/` },
  },
];

/** Cruises `paths` (relative to the repository root) and returns every broken rule, one line each. */
async function violations(paths: string[]): Promise<string[]> {
  const result = await cruise(paths, {
    baseDir: root,
    tsConfig: { fileName: "tsconfig.json" },
    // Type-only imports count too: a cycle of types is still a cycle to read through.
    tsPreCompilationDeps: true,
    exclude: { path: "\\.d\\.ts$" },
    doNotFollow: { path: "node_modules" },
    // Workspace packages resolve through their package.json `exports` to their TypeScript sources.
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "default", "node"], extensions: [".ts", ".js", ".json"] },
    validate: true,
    ruleSet: { forbidden: RULES },
  });
  const output = result.output as ICruiseResult;
  return output.summary.violations.map((v) =>
    v.cycle?.length
      ? `${v.rule.name}: ${[v.from, ...v.cycle.map((step) => step.name)].join(" → ")}`
      : `${v.rule.name}: ${v.from} → ${v.to}`,
  );
}

test("no import cycles, a pure core, and service layers that only import downwards", async () => {
  const found = await violations(["packages/protocol/src", "packages/core/src", "packages/service/src", "packages/local/src", "packages/agent/src", "packages/cli/src", "functions"]);
  assert.equal(found.length, 0, `dependency rules broken (docs/architecture.md):\n${found.join("\n")}`);
});
