/**
 * Every kind of task the agent runs, one module each. A new kind is its module plus one line
 * here; the mapped type makes a task message the protocol adds without a kind a compile error.
 */
import { buildTask } from "./build.ts";
import { effectTask } from "./effect.ts";
import { evaluateTask } from "./evaluate.ts";
import type { TaskKind, TaskMessage } from "./task-kind.ts";

export type TaskKindName = TaskMessage["type"];

const TASK_KINDS: { readonly [K in TaskKindName]: TaskKind<Extract<TaskMessage, { type: K }>> } = {
  evaluate: evaluateTask,
  build: buildTask,
  effect: effectTask,
};

/** The kind that runs `task`. */
export function kindOf<T extends TaskMessage>(task: T): TaskKind<T> {
  return TASK_KINDS[task.type as TaskKindName] as unknown as TaskKind<T>;
}
