/** The `AgentInfo` an agent sends in `hello`: what Nix reports, with the config's overrides. */
import os from "node:os";
import { AgentInfo, NIMBUS_VERSION, normalizeSubstituter } from "@nimbus/protocol";
import type { AgentCaches } from "./agent-caches.ts";
import type { AgentConfig } from "./config.ts";
import { AgentFatalError } from "./errors.ts";
import type { NixInfo } from "./nix-info.ts";

/** What the agent's binary caches and store add to its info. */
export interface CacheFacts {
  caches: Pick<AgentCaches, "info" | "urls">;
  storeId: string;
}

export function buildAgentInfo(config: AgentConfig, nix: NixInfo, hostname: string = os.hostname(), facts?: CacheFacts): AgentInfo {
  const candidate: AgentInfo = {
    hostname,
    agentVersion: NIMBUS_VERSION,
    nixVersion: nix.nixVersion,
    // Remote builders of these platforms build anything this machine can (Hercules' meaning).
    systems: [...new Set([...(config.systems ?? nix.systems), ...config.remotePlatformsWithSameFeatures])],
    systemFeatures: [...new Set(config.systemFeatures ?? nix.systemFeatures)],
    mandatoryFeatures: [...new Set(config.mandatoryFeatures)],
    // What Nix substitutes from: the machine's own (unless turned off), then every configured cache.
    substituters: withoutDuplicates([...nix.substituters, ...(facts?.caches.urls ?? [])]),
    pushCaches: (facts?.caches.info ?? []).filter((c) => c.push).map((c) => c.name),
    ...(facts ? { caches: facts.caches.info, storeId: facts.storeId } : {}),
    concurrentTasks: config.concurrentTasks,
    labels: config.labels,
  };
  const checked = AgentInfo.safeParse(candidate);
  if (!checked.success) {
    const problems = checked.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new AgentFatalError(
      "invalid-agent-info",
      `what this machine reports does not fit the protocol (${problems}) — set "systems"/"systemFeatures" in ${config.source}`,
    );
  }
  return checked.data;
}

/** Substituter URLs once each, `…/` and `…` being the same. */
function withoutDuplicates(urls: readonly string[]): string[] {
  const seen = new Set<string>();
  return urls.filter((url) => {
    const key = normalizeSubstituter(url);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
