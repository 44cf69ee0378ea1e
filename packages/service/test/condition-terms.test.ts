/**
 * Conditions without grouping parentheses (storage/condition-terms.ts): what `allOf` and
 * `anyOf` write, and — judged by dynalite's own parser and evaluator, the emulator whose
 * backtracking over groups they avoid — that a job row's copy condition still admits exactly
 * the rows its grouped form did; and that no condition in the service's sources is grouped.
 */
import assert from "node:assert/strict";
import { globSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { allOf, anyOf } from "../src/storage/condition-terms.ts";
import { copyCondition } from "../src/storage/job-derivations.ts";

// dynalite 4's parser and evaluator, as its request handler uses them (validations/index.js, db/index.js).
const require = createRequire(import.meta.url);
const parser = require("dynalite/db/conditionParser.js") as { parse(text: string, options: { context: object }): unknown };
const db = require("dynalite/db/index.js") as { compare: unknown; checkConditional(data: object, item: object): unknown };

type Attribute = { S: string } | { N: string };

/** Whether dynalite lets a conditional write with `expression` through on `item` (DynamoDB's JSON). */
function admits(expression: string, values: Record<string, Attribute>, item: Record<string, Attribute> | undefined): boolean {
  const context = { attrNames: undefined, attrVals: values, unusedAttrNames: {}, unusedAttrVals: {}, isReserved: () => false, compare: db.compare };
  return db.checkConditional({ _condition: parser.parse(expression, { context }) }, item ?? {}) == null;
}

test("allOf joins terms with AND and refuses a term holding OR", () => {
  assert.equal(allOf("a = :a", "attribute_exists(b)"), "a = :a AND attribute_exists(b)");
  assert.equal(allOf("#status IN (:from0, :from1)"), "#status IN (:from0, :from1)");
  assert.throws(() => allOf("a = :a", "b = :b OR c = :c"), /holds OR: inside AND it needs a group, so write the condition with anyOf/);
});

test("anyOf writes alternatives of terms, relying on AND binding tighter than OR", () => {
  assert.equal(anyOf(["a = :a", "b = :b"], ["c = :c"]), "a = :a AND b = :b OR c = :c");
  assert.throws(() => anyOf(["a = :a OR b = :b"]), /holds OR/);
  // What dynalite makes of it: (a AND b) OR c.
  const values = { ":a": { N: "1" }, ":b": { N: "1" }, ":c": { N: "1" } };
  const expression = anyOf(["a = :a", "b = :b"], ["c = :c"]);
  assert.equal(admits(expression, values, { a: { N: "1" }, b: { N: "0" }, c: { N: "0" } }), false);
  assert.equal(admits(expression, values, { a: { N: "0" }, b: { N: "0" }, c: { N: "1" } }), true);
  assert.equal(admits(expression, values, { a: { N: "1" }, b: { N: "1" }, c: { N: "0" } }), true);
});

test("a job row's copy condition admits exactly the rows its grouped form did, and has no group", () => {
  const grouped = (mustExist: boolean, told: boolean) =>
    `${mustExist ? "attribute_exists(jobId) AND " : ""}(attribute_not_exists(version) OR version < :v${told ? " OR (version = :v AND (attribute_not_exists(told) OR told < :v))" : ""})`;
  const values = { ":v": { N: "3" } };
  const rows: (Record<string, Attribute> | undefined)[] = [undefined];
  for (const jobId of [undefined, "j1"])
    for (const version of [undefined, 2, 3, 4])
      for (const told of [undefined, 2, 3])
        rows.push({
          ...(jobId ? { jobId: { S: jobId } } : {}),
          ...(version !== undefined ? { version: { N: String(version) } } : {}),
          ...(told !== undefined ? { told: { N: String(told) } } : {}),
        });
  let admitted = 0;
  for (const mustExist of [false, true])
    for (const told of [false, true]) {
      const flat = copyCondition(mustExist, told);
      assert.doesNotMatch(flat, /\((?!jobId\)|version\)|told\))/, `a group in ${flat}`);
      for (const row of rows) {
        const expected = admits(grouped(mustExist, told), values, row);
        assert.equal(admits(flat, values, row), expected, `${flat} on ${JSON.stringify(row)}`);
        if (expected) admitted++;
      }
    }
  // Both outcomes were met: the comparison judged something.
  assert.ok(admitted > 0 && admitted < 4 * rows.length);
});

test("no condition the service writes groups terms in parentheses", () => {
  const root = fileURLToPath(new URL("../../..", import.meta.url));
  const sources = [...globSync("packages/service/src/**/*.ts", { cwd: root }), ...globSync("functions/**/*.ts", { cwd: root })];
  assert.ok(sources.length > 50, `found only ${sources.length} sources under ${root}`);
  // A group follows AND, OR or NOT, or opens a quoted expression; function calls and IN lists follow a name.
  const grouped = [/\b(AND|OR|NOT) \(/, /["'`]\((attribute_|#|[a-zA-Z_.]+ (=|<|>|<>|<=|>=|IN|BETWEEN) )/];
  const found = sources.flatMap((file) =>
    readFileSync(join(root, file), "utf8")
      .split("\n")
      .flatMap((line, i) => (grouped.some((pattern) => pattern.test(line)) ? [`${file}:${i + 1}: ${line.trim()}`] : [])),
  );
  assert.deepEqual(found, [], "write these with anyOf/allOf (storage/condition-terms.ts): dynalite's parse time grows two- to fourfold per level of groups");
  // The check sees a group where one is written.
  assert.ok(grouped.some((pattern) => pattern.test('ConditionExpression: "attribute_exists(a) AND (b = :b OR c = :c)"')));
});
