/**
 * A `build-result`'s acknowledgement, owed to its agent once the result is recorded (the settle's
 * move written): the first build this invocation sends that agent carries it (`acks`, core
 * `foldAcks`), so the gateway posts one message where it posted two; if none does, it goes alone
 * as `result-ack` once the invocation's dispatches are done (edges/agent-messages.ts).
 */
import { foldAcks } from "@nimbus/core";
import type { ResultAck, ServiceMessage } from "@nimbus/protocol";

export class OwedAck {
  private owed = true;

  constructor(readonly taskId: string) {}

  /**
   * `task` as it goes to the reporting agent: carrying the ack while it is owed. Taken even if the
   * send then fails: the connection is gone, and the agent sends its result again after it
   * reconnects, as after a lost `result-ack`.
   */
  carry(task: ServiceMessage): ServiceMessage {
    if (!this.owed) return task;
    const { message, folded } = foldAcks(task, [this.taskId]);
    if (folded.length > 0) this.owed = false;
    return message;
  }

  /** The `result-ack` to send alone, once, when no build carried it. */
  alone(): ResultAck | undefined {
    if (!this.owed) return undefined;
    this.owed = false;
    return { type: "result-ack", taskId: this.taskId };
  }
}
