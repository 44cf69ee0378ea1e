/**
 * Every task kind the service gives agents. A new kind (effects, say) is one file beside
 * these and one entry here: the session's record union, dispatch's queues, hand-back, resume
 * and report routing all follow from this list.
 */
import type { QueueSource } from "@nimbus/core";
import type { ServiceMessage } from "@nimbus/protocol";
import { z } from "zod";
import { buildKind } from "./build.ts";
import { effectKind } from "./effect.ts";
import { evaluateKind } from "./evaluate.ts";
import type { ReportInput, TaskAnswer, TaskKind, TaskReport, TaskReportType } from "./task-kind.ts";

export const TASK_KINDS = [evaluateKind, buildKind, effectKind] as const;

type Records<T extends readonly { record: unknown }[]> = { -readonly [I in keyof T]: T[I]["record"] };

/** What a session stores of each task it holds: one record per kind, told apart by `kind`. */
export const SessionTask = z.discriminatedUnion("kind", TASK_KINDS.map((k) => k.record) as Records<typeof TASK_KINDS>);
export type SessionTask = z.infer<typeof SessionTask>;
export type TaskKindName = SessionTask["kind"];

/** Kinds with their types erased: each record is only ever handed to the kind that declared it. */
type AnyKind = TaskKind<string, { kind: string; startedAt: string }, ServiceMessage>;
const byName = new Map<string, AnyKind>(TASK_KINDS.map((k) => [k.kind, k as unknown as AnyKind]));

export function taskKind(name: string): AnyKind {
  const kind = byName.get(name);
  if (!kind) throw new Error(`no task kind "${name}" (known: ${[...byName.keys()].join(", ")})`);
  return kind;
}

/** The queues of every kind, for core `planDispatch`. */
export async function taskSources(): Promise<QueueSource[]> {
  return (await Promise.all(TASK_KINDS.map((k) => k.sources()))).flat();
}

/** The kind whose task a report is about, and its handler (each report type belongs to one kind). */
export function reportHandler(
  type: TaskReportType,
): { kind: string; handle: (input: ReportInput<TaskReport, SessionTask>) => Promise<TaskAnswer> } | undefined {
  for (const kind of TASK_KINDS) {
    const handle = (kind.reports as Partial<Record<TaskReportType, unknown>>)[type];
    if (handle) return { kind: kind.kind, handle: handle as (input: ReportInput<TaskReport, SessionTask>) => Promise<TaskAnswer> };
  }
  return undefined;
}
