/**
 * The AgentClasses table: one item per capability class agents said hello with (core
 * capability-class.ts). Classes are never removed — there are about as many as kinds of
 * machines in the fleet — so the table stays small, and a class whose agents are gone costs a
 * query of its empty index partitions.
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

/** Records an agent's class (at its hello: rare enough that a write each time is simpler than remembering). */
export async function registerAgentClass(klass: CapabilityClass, now: Date): Promise<void> {
  const item: AgentClassItem = { classId: klass.classId, capabilities: klass.capabilities, createdAt: now.toISOString() };
  await AgentClasses.put(item, { expression: "attribute_not_exists(classId)" });
  cached?.classes.set(klass.classId, klass);
}

/** Every class (a small table), from this handler's copy while it is fresh; `fresh` reads the table again. */
export async function listAgentClasses(options: { fresh?: boolean; now?: number } = {}): Promise<CapabilityClass[]> {
  const now = options.now ?? Date.now();
  if (!cached || options.fresh || cached.until <= now) {
    const items = await AgentClasses.scan();
    cached = { until: now + CLASSES_TTL_MS, classes: new Map(items.map((i) => [i.classId, { classId: i.classId, capabilities: i.capabilities }])) };
  }
  return [...cached.classes.values()];
}
