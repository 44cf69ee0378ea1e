/**
 * Agents grouped by what they can build, so that waking and placing work reads only the
 * sessions that could take it (docs/architecture.md, "Waking idle agents"). Agents whose
 * hellos give the same systems, features and remote builders form one capability class; the
 * Sessions table's `byCapability` index is keyed by class and shard, and the AgentClasses
 * table lists the classes, so a queue key leads to the few classes that serve it by Nix's
 * rule (matching.ts) instead of to every session. Pure, but for the hash.
 */
import { createHash } from "node:crypto";
import type { AgentInfo } from "@nimbus/protocol";
import { canBuild, capabilitiesOf, type BuilderCapabilities, type BuildRequirements } from "./matching.ts";
import { parseQueueKey } from "./queue-key.ts";

/**
 * Shards per class: a class of many agents (a fleet of one kind of machine) would otherwise
 * put every slot change of the fleet into one index partition. Few, because a reader that
 * finds nothing (every agent busy) asks each of them.
 */
export const CAPABILITY_SHARDS = 2;

export interface CapabilityClass {
  /** A hash of the canonical capabilities: the same for every agent that can build the same things. */
  classId: string;
  capabilities: BuilderCapabilities;
}

const sorted = (items: readonly string[]) => [...new Set(items)].sort();

const canonical = (c: BuilderCapabilities): BuilderCapabilities => ({
  systems: sorted(c.systems),
  supportedFeatures: sorted(c.supportedFeatures),
  mandatoryFeatures: sorted(c.mandatoryFeatures),
  ...(c.remotes?.length
    ? {
        remotes: c.remotes
          .map(canonical)
          .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
          .filter((r, i, all) => i === 0 || JSON.stringify(r) !== JSON.stringify(all[i - 1])),
      }
    : {}),
});

/** The class of an agent: order and repetition in its hello's lists do not matter. */
export function capabilityClassOf(agent: Pick<AgentInfo, "systems" | "systemFeatures" | "mandatoryFeatures" | "remoteBuilders">): CapabilityClass {
  const capabilities = canonical(capabilitiesOf(agent));
  const classId = createHash("sha256").update(JSON.stringify(capabilities)).digest("hex").slice(0, 20);
  return { classId, capabilities };
}

/** Which shard of its class a session's index entry is in: fixed for the session's life. */
export function shardOf(sessionId: string): number {
  return createHash("sha256").update(sessionId).digest().readUInt32BE(0) % CAPABILITY_SHARDS;
}

/** The index partition of one shard of a class (Sessions.capKey). */
export const capabilityKey = (classId: string, shard: number): string => `${classId}#${shard}`;

/** Every partition of a class: what a reader of the class asks. */
export const capabilityKeysOf = (classId: string): string[] => Array.from({ length: CAPABILITY_SHARDS }, (_, shard) => capabilityKey(classId, shard));

/** The classes whose agents may build it under Nix's rule. */
export const classesServing = <C extends CapabilityClass>(classes: readonly C[], requirement: BuildRequirements): C[] =>
  classes.filter((c) => canBuild(c.capabilities, requirement));

/**
 * The classes to look for idle agents in, for the work one invocation queued: every class for
 * an evaluation or an effect (any agent may take one), else those serving one of its build
 * queues.
 */
export function classesToWake<C extends CapabilityClass>(classes: readonly C[], work: { queueKeys: ReadonlySet<string>; evaluations: boolean }): C[] {
  if (work.evaluations) return [...classes];
  const queues = [...work.queueKeys].map(parseQueueKey);
  return classes.filter((c) => queues.some(({ system, features }) => canBuild(c.capabilities, { system, requiredFeatures: features })));
}
