/**
 * The AgentClasses table: one item per capability class agents said hello with (core
 * capability-class.ts) — about as many as kinds of machines in the fleet. A class no agent has
 * said hello with for a week and that has no session left is forgotten by the sweeper, so
 * machines retired long ago cost nothing in every wake.
 */
import type { CapabilityClass } from "@nimbus/core";
import type { AgentClassItem } from "./items.ts";
import { AgentClasses } from "./tables.ts";

/**
 * How long a warm handler believes its list of classes. Safe to be stale: a class first seen
 * meanwhile by another handler is an agent that asked for work in its hello; until this
 * handler reads the list again its agents are not woken from here (they ask when a slot frees,
 * and the sweeper wakes for what waits), and placing a build re-reads the list before it
 * decides that no agent can take it.
 */
const CLASSES_TTL_MS = 5_000;

let cached: { until: number; classes: Map<string, CapabilityClass> } | undefined;

/** Records an agent's class and when it was last said hello with (at a hello: rare enough for a write each time). */
export async function registerAgentClass(klass: CapabilityClass, now: Date): Promise<void> {
  await AgentClasses.update(
    { classId: klass.classId },
    {
      UpdateExpression: "SET capabilities = :caps, createdAt = if_not_exists(createdAt, :now), lastHelloAt = :now",
      ExpressionAttributeValues: { ":caps": klass.capabilities, ":now": now.toISOString() },
    },
  );
  cached?.classes.set(klass.classId, klass);
}

/** Classes no agent said hello with since `before` (a small table, read whole). */
export const quietAgentClasses = async (before: Date): Promise<AgentClassItem[]> =>
  (await AgentClasses.scan()).filter((c) => (c.lastHelloAt ?? c.createdAt) < before.toISOString());

/**
 * Forgets a class — only if no hello came since it was read (`seen`): a hello updates the item
 * before its session joins the class's index, so a class is never forgotten under a new session.
 */
export const forgetAgentClass = (klass: AgentClassItem): Promise<boolean> =>
  AgentClasses.delete(
    { classId: klass.classId },
    klass.lastHelloAt
      ? { expression: "lastHelloAt = :seen", values: { ":seen": klass.lastHelloAt } }
      : { expression: "attribute_not_exists(lastHelloAt) AND createdAt = :seen", values: { ":seen": klass.createdAt } },
  );

/** Every class (a small table), from this handler's copy while it is fresh; `fresh` reads the table again. */
export async function listAgentClasses(options: { fresh?: boolean; now?: number } = {}): Promise<CapabilityClass[]> {
  const now = options.now ?? Date.now();
  if (!cached || options.fresh || cached.until <= now) {
    const items = await AgentClasses.scan();
    cached = { until: now + CLASSES_TTL_MS, classes: new Map(items.map((i) => [i.classId, { classId: i.classId, capabilities: i.capabilities }])) };
  }
  return [...cached.classes.values()];
}
