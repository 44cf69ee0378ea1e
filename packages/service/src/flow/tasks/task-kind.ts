/**
 * What the service must know of one kind of task (evaluate, build; effects later), declared
 * once per kind in flow/tasks/<kind>.ts and listed in flow/tasks/registry.ts. The dispatch
 * runner, the session's hand-back and resume, and the agent-message edge work only through
 * these declarations, so a new kind is one new file and a line in the registry.
 */
import type { Message } from "@aws-sdk/client-sqs";
import type { BuildNeeds, QueueSource, TaskStanding } from "@nimbus/core";
import type { AgentMessage, ServiceMessage } from "@nimbus/protocol";
import type { z } from "zod";
import type { SessionFields } from "../../storage/items.ts";
import type { WorkNotes } from "../new-work.ts";

/** The session a task is given to, as a task kind sees it. */
export type TaskHolder = SessionFields;

/** A message from an agent about one of its tasks (events, logs, results). */
export type TaskReport = Extract<AgentMessage, { taskId: string }>;
export type TaskReportType = TaskReport["type"];

/** What to answer a report with, and whether to give the session more work after answering. */
export interface TaskAnswer {
  replies: ServiceMessage[];
  more: boolean;
  /** Replies that only the follow-up's writes decide (a `build-pushing` refused by the write that hands its slot on): sent after it. */
  later?: () => Promise<ServiceMessage[]>;
}

export interface ReportInput<M extends TaskReport, R> {
  session: TaskHolder;
  message: M;
  /** The session's record of `message.taskId` when it is a task of this kind. */
  held: R | undefined;
  now: Date;
  work: WorkNotes;
  /**
   * Set when `session` is this handler's recent copy, not a fresh read (edges/agent-messages.ts):
   * reads the session afresh, with its record of the task — undefined when the session ended or
   * speaks on another connection, and the report is then answered `sessionGone`. A handler whose
   * conditional write the copy misled calls it to answer as a fresh read would have.
   */
  reread?: () => Promise<{ session: TaskHolder; held: R | undefined } | undefined>;
}

/** A received queue message read: the task it stands for, ready to lease. */
export interface Claim<R, M> {
  taskId: string;
  /** What the session records once it holds the task. */
  record: R;
  /** What an agent must be able to do to take it (a build: Nix's rule and reaching its inputs); none means any agent that serves the queue. */
  needs?: BuildNeeds;
  /** Takes the target's lease for the holder (whose slot is reserved already): the message to send, or undefined if the target moved on meanwhile. */
  lease(holder: TaskHolder, now: Date): Promise<M | undefined>;
}

export interface TaskKind<K extends string, R extends { kind: K; startedAt: string }, M extends ServiceMessage> {
  kind: K;
  /** The task message the agent receives (docs/protocol.md). */
  message: z.ZodType<M>;
  /** What the session stores while it holds a task of this kind. */
  record: z.ZodType<R>;
  /** The queues its work waits in; core `planDispatch` orders them and keeps those the agent may serve. */
  sources(): Promise<QueueSource[]>;
  queueUrl(queue: string): Promise<string>;
  /** The queue vanished (a local restart empties them): forget what was cached of it. */
  forgetQueue(queue: string): void;
  /** Reads a received message: the task to lease, or undefined when its target no longer waits for an agent. */
  claim(message: Message, now: Date): Promise<Claim<R, M> | undefined>;
  /** Whether the holder holds the task's lease: a read, nothing else (the sweeper asks it of every slot). */
  holds(taskId: string, record: R, holder: TaskHolder): Promise<boolean>;
  /** After a reconnect, or when a heartbeat shows it lost: the task message again, if the holder still holds the task's lease (the message may mint a credential). */
  resume(taskId: string, record: R, holder: TaskHolder): Promise<M | undefined>;
  /** Where a held task stands (core `TaskStanding`), read from its target. */
  standing(taskId: string, record: R, holder: TaskHolder): Promise<TaskStanding>;
  /** The holder's session ends (goodbye, or its agent was lost): the task goes back for another agent. */
  handBack(taskId: string, record: R, holder: TaskHolder, reason: string, work: WorkNotes): Promise<void>;
  /** How each report about a task of this kind is handled. */
  reports: { [T in TaskReportType]?: (input: ReportInput<Extract<TaskReport, { type: T }>, R>) => Promise<TaskAnswer> };
}

/** The answer to a report about a task the agent does not hold (nothing changed). */
export const unknownTask = (taskId: string, why: string): ServiceMessage => ({
  type: "error",
  code: "unknown-task",
  message: `task ${taskId} ${why}; nothing changed`,
  fatal: false,
  taskId,
});

/** The answer to a report whose session ended or moved to another connection: the connection is closed (docs/protocol.md). */
export const sessionGone: ServiceMessage = {
  type: "error",
  code: "unknown-connection",
  message: "this connection is not registered (it may have been cleaned up): reconnect",
  fatal: false,
};

export const answer = (more: boolean, ...replies: ServiceMessage[]): TaskAnswer => ({ replies, more });
