/**
 * How tasks talk to the service without caring about reconnects: messages that cannot go out
 * now wait in memory for the next welcome. What must not be lost with a connection is kept
 * until the service acknowledges it and is sent again after every welcome: evaluation batches
 * (`AckedStream`) and each task's final message (`UnackedResults`).
 */
import type { AgentMessage } from "@nimbus/protocol";

export interface Link {
  /** Sends now, or after the next welcome if the agent is not connected. */
  send(message: AgentMessage): void;
  /** Sends now if connected; false if not (the caller resends after the next welcome). */
  sendNow(message: AgentMessage): boolean;
}

/** What the outbox needs of a connection. */
export interface Sender {
  readonly connected: boolean;
  /** False when the socket is not open. */
  send(message: AgentMessage): boolean;
}

export class Outbox implements Link {
  private queue: AgentMessage[] = [];
  private sender: Sender | undefined;

  /** The current connection (welcomed or not yet). */
  attach(sender: Sender | undefined): void {
    this.sender = sender;
  }

  send(message: AgentMessage): void {
    if (!this.sendNow(message)) this.queue.push(message);
  }

  sendNow(message: AgentMessage): boolean {
    return this.sender?.connected === true && this.sender.send(message);
  }

  /** After a welcome: everything queued, in order. */
  flush(): void {
    const queued = this.queue;
    this.queue = [];
    for (let i = 0; i < queued.length; i++) {
      if (!this.sendNow(queued[i]!)) {
        this.queue = [...queued.slice(i), ...this.queue];
        return;
      }
    }
  }

  /** Forgets what waits for a task the service no longer wants to hear about. */
  drop(taskId: string): number {
    const before = this.queue.length;
    this.queue = this.queue.filter((m) => !("taskId" in m) || m.taskId !== taskId);
    return before - this.queue.length;
  }

  get queued(): number {
    return this.queue.length;
  }
}
