import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isNewerThan, rowsBehind, settleTold, shownStatus, type StatusCopy } from "../src/mirrors.ts";

describe("isNewerThan: which copy of a status wins", () => {
  const cases: Array<[string, number, number | undefined, boolean]> = [
    ["a later move replaces an earlier copy", 4, 3, true],
    ["the same move twice changes nothing", 3, 3, false],
    ["an earlier move never replaces a later copy", 2, 3, false],
    ["a copy without a version takes any move", 0, undefined, true],
  ];
  for (const [name, version, row, expected] of cases) it(name, () => assert.equal(isNewerThan(version, { version: row }), expected));
});

describe("rowsBehind: a job's rows its derivations have moved past", () => {
  const derivations: Record<string, StatusCopy> = {
    done: { status: "succeeded", version: 3 },
    moving: { status: "building", version: 2 },
    legacy: { status: "succeeded" },
  };
  const of = (drv: string) => derivations[drv];
  const cases: Array<[string, (StatusCopy & { drvPath: string })[], ReturnType<typeof rowsBehind>]> = [
    ["a row still building after the build succeeded", [{ drvPath: "done", status: "building", version: 2 }], [{ drvPath: "done", status: "succeeded", version: 3 }]],
    ["a row in step", [{ drvPath: "moving", status: "building", version: 2 }], []],
    ["a queued row of a build under way is in step (a build's start is no move of its rows)", [{ drvPath: "moving", status: "queued", version: 1 }], []],
    ["a waiting row of a build handed over is in step", [{ drvPath: "moving", status: "waiting", version: 1 }], []],
    ["a row ahead of a stale read is left alone", [{ drvPath: "moving", status: "succeeded", version: 3 }], []],
    ["a row of an unknown derivation is left alone", [{ drvPath: "gone", status: "queued", version: 1 }], []],
    ["a row without a version takes the derivation's status", [{ drvPath: "legacy", status: "queued" }], [{ drvPath: "legacy", status: "succeeded", version: 0 }]],
  ];
  for (const [name, rows, expected] of cases) it(name, () => assert.deepEqual(rowsBehind(rows, of), expected));
});

describe("shownStatus: what a job's row of a derivation shows", () => {
  const cases: Array<[string, Parameters<typeof shownStatus>, ReturnType<typeof shownStatus>]> = [
    ["a dispatched build under way: its row says queued", ["queued", "building"], "building"],
    ["a build handed over: its row says waiting", ["waiting", "building"], "building"],
    ["a queued derivation", ["queued", "queued"], "queued"],
    ["a settled row stays as it is, whatever a rebuild does (a finished job's copy)", ["succeeded", "building"], "succeeded"],
    ["a row whose derivation is gone", ["waiting", undefined], "waiting"],
  ];
  for (const [name, args, expected] of cases) it(name, () => assert.equal(shownStatus(...args), expected));
});

describe("settleTold: whether a settle's dependents and jobs were told", () => {
  const settled = { version: 4, paging: false };
  const cases: Array<[string, { version: number; paging: boolean }, Parameters<typeof settleTold>[1], boolean]> = [
    ["every job's copy written by the settle once it had told its dependents", settled, [{ version: 4, told: 4 }, { version: 4, told: 4 }], true],
    ["a job's copy still behind (its handler died first)", settled, [{ version: 4, told: 4 }, { version: 3 }], false],
    ["a copy of the settled version a registration wrote says nothing of the dependents", settled, [{ version: 4 }], false],
    ["a job without a row yet", settled, [{ version: 4, told: 4 }, undefined], false],
    ["no job at all", settled, [], false],
    ["an earlier settle's told copy does not count for this one", settled, [{ version: 4, told: 2 }], false],
    ["a copy of a later move: it moved on, and that move is told in its turn", settled, [{ version: 6 }], true],
    ["a settle still going through its pages", { version: 4, paging: true }, [{ version: 4, told: 4 }], false],
  ];
  for (const [name, drv, copies, expected] of cases) it(name, () => assert.equal(settleTold(drv, copies), expected));
});
