import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import { PROTOCOL_VERSION, ServiceMessage, type AgentInfo } from "@nimbus/protocol";

/** What the service sends unasked: tasks, never an answer to a message. */
const TASK_TYPES = new Set<string>(["evaluate", "build", "effect"]);

/** A protocol-level agent for tests: speaks raw frames, no Nix. */
export class RawAgent {
  readonly messages: ServiceMessage[] = [];
  closed?: { code: number; reason: string };
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data) => {
      this.messages.push(ServiceMessage.parse(JSON.parse(data.toString())));
      this.wake();
    });
    socket.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
  }

  private wake() {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Opens a connection; rejects with the HTTP status when the upgrade is refused. */
  static connect(url: string, token?: string): Promise<RawAgent> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      socket.once("open", () => resolve(new RawAgent(socket)));
      socket.once("unexpected-response", (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      socket.once("error", reject);
    });
  }

  send(message: unknown) {
    this.socket.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Waits for the next message after the `seen` first ones. */
  async next(seen = this.messages.length, timeoutMs = 5000): Promise<ServiceMessage> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length <= seen) {
      if (this.closed) throw new Error(`connection closed (${this.closed.code}) before a message arrived`);
      if (Date.now() > deadline) throw new Error("no message arrived");
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
    return this.messages[seen]!;
  }

  /**
   * Sends and waits for the answer to it: the first message after it that is not a task. A
   * task the service gives meanwhile (a build queued by this very message, sent as soon as it
   * is queued) may come before the answer; it stays in `messages`. A result is also answered by
   * a build that acknowledges it (`acks`), which the service sends instead of its `result-ack`.
   */
  async request(message: unknown, timeoutMs = 5000): Promise<ServiceMessage> {
    let seen = this.messages.length;
    const fields = typeof message === "object" && message !== null ? (message as { requestId?: unknown; type?: unknown; taskId?: unknown }) : {};
    // A request with an id (cache uploads) is answered by the reply with that id: several may be in flight at once.
    const requestId = fields.requestId;
    const result = fields.type === "build-result" ? fields.taskId : undefined;
    const answers = (reply: ServiceMessage) =>
      requestId === undefined
        ? !TASK_TYPES.has(reply.type) || (reply.type === "build" && result !== undefined && reply.acks?.includes(String(result)) === true)
        : (reply as { requestId?: unknown }).requestId === requestId || (reply.type === "error" && !("requestId" in reply));
    this.send(message);
    for (;;) {
      const reply = await this.next(seen, timeoutMs);
      if (answers(reply)) return reply;
      seen++;
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("connection did not close");
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.closed;
  }

  close() {
    this.socket.close(1000);
  }
}

export function agentInfo(overrides: Partial<AgentInfo> = {}): AgentInfo {
  return {
    hostname: "raw-agent",
    agentVersion: "test",
    nixVersion: "2.8.0",
    systems: ["x86_64-linux"],
    systemFeatures: ["kvm"],
    mandatoryFeatures: [],
    substituters: [],
    pushCaches: [],
    concurrentTasks: 2,
    labels: {},
    ...overrides,
  };
}

/** A fresh session credential, as an agent makes on its first start. */
export const newSession = () => ({ id: randomBytes(16).toString("hex"), secret: randomBytes(32).toString("base64url") });

export const hello = (overrides: Partial<AgentInfo> = {}, session = newSession(), tasksInProgress: string[] = []) => ({
  type: "hello",
  protocolVersion: PROTOCOL_VERSION,
  agent: agentInfo(overrides),
  session,
  tasksInProgress,
});

/**
 * A raw agent connected and welcomed on `system` alone (no features) with `concurrentTasks`
 * slots: with its connection id and its session's id.
 */
export async function connectedOn(url: string, token: string, hostname: string, system: string, concurrentTasks = 1): Promise<{ agent: RawAgent; connectionId: string; sessionId: string }> {
  const agent = await RawAgent.connect(url, token);
  const session = newSession();
  const welcome = await agent.request(hello({ hostname, systems: [system], systemFeatures: [], concurrentTasks }, session));
  if (welcome.type !== "welcome") {
    agent.close();
    throw new Error(`${hostname} was not welcomed: ${JSON.stringify(welcome)}`);
  }
  return { agent, connectionId: welcome.connectionId, sessionId: session.id };
}
