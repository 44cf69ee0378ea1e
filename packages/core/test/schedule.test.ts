import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { nextRun, resolveSchedule, scheduleStep } from "../src/index.ts";

// onSchedule's `when` (docs/effects.md, "Schedules"), on explicit times: no clock is read.
const utc = (text: string) => new Date(`${text}Z`);
const iso = (d: Date | undefined) => d?.toISOString().replace(":00.000Z", "");

describe("schedules", () => {
  it("runs at the given minute of the given hours, strictly after the last time", () => {
    const when = { minute: 15, hour: [3, 15] };
    assert.equal(iso(nextRun(when, "k", utc("2026-03-02T00:00:00"))), "2026-03-02T03:15");
    assert.equal(iso(nextRun(when, "k", utc("2026-03-02T03:15:00"))), "2026-03-02T15:15", "strictly after");
    assert.equal(iso(nextRun(when, "k", utc("2026-03-02T16:00:00"))), "2026-03-03T03:15", "the next day");
  });

  it("keeps to days of the week and of the month, both at once when both are given", () => {
    // 2026-03-02 is a Monday.
    assert.equal(iso(nextRun({ minute: 0, hour: [9], dayOfWeek: ["Fri"] }, "k", utc("2026-03-02T10:00:00"))), "2026-03-06T09:00");
    assert.equal(iso(nextRun({ minute: 0, hour: [9], dayOfMonth: [1] }, "k", utc("2026-03-02T10:00:00"))), "2026-04-01T09:00");
    // The first Tuesday of a month (Hercules' example): Tuesday and day 1–7.
    assert.equal(iso(nextRun({ minute: 30, hour: [6], dayOfWeek: ["Tue"], dayOfMonth: [1, 2, 3, 4, 5, 6, 7] }, "k", utc("2026-03-04T00:00:00"))), "2026-04-07T06:30");
    assert.equal(iso(nextRun({ minute: 0, hour: [0], dayOfMonth: [29] }, "k", utc("2027-02-01T00:00:00"))), "2027-03-29T00:00", "no 29 February in 2027");
  });

  it("picks a minute and hour from the key when they are left out, the same every time", () => {
    const a = resolveSchedule({}, "acme/widgets#nightly");
    assert.deepEqual(resolveSchedule({}, "acme/widgets#nightly"), a);
    assert.ok(a.minute >= 0 && a.minute < 60 && a.hours.length === 1 && a.hours[0]! >= 0 && a.hours[0]! < 24);
    const spread = new Set(Array.from({ length: 50 }, (_, i) => resolveSchedule({}, `repo#${i}`).minute));
    assert.ok(spread.size > 20, "different schedules get different minutes");
    assert.equal(resolveSchedule({ hour: [5] }, "x").hours[0], 5);
  });

  it("says never for a calendar that has no such day", () => {
    assert.equal(nextRun({ minute: 0, hour: [0], dayOfMonth: [31], dayOfWeek: ["Mon"] }, "k", utc("2026-01-01T00:00:00"))?.getUTCDate(), 31);
    assert.equal(nextRun({ minute: 0, hour: [0], dayOfMonth: [30, 31] }, "k", utc("2026-02-01T00:00:00"))?.getUTCMonth(), 2, "not in February");
  });

  it("runs a missed time once when the stack comes back, then the next one after now", () => {
    const when = { minute: 0 } as const;
    const hourly = { ...when, hour: Array.from({ length: 24 }, (_, h) => h) };
    const down = scheduleStep(hourly, "k", utc("2026-03-02T02:00:00"), utc("2026-03-02T05:30:00"));
    assert.deepEqual([down.run, iso(down.next)], [true, "2026-03-02T06:00"], "three missed hours, one run");
    const early = scheduleStep(hourly, "k", utc("2026-03-02T06:00:00"), utc("2026-03-02T05:59:59"));
    assert.deepEqual([early.run, iso(early.next)], [false, "2026-03-02T06:00"]);
  });
});
