/** The `AgentInfo` an agent sends in `hello`: what Nix reports, with the config's overrides. */
import os from "node:os";
import { AgentInfo, NIMBUS_VERSION } from "@nimbus/protocol";
import type { AgentConfig } from "./config.ts";
import { AgentFatalError } from "./errors.ts";
import type { NixInfo } from "./nix-info.ts";

export function buildAgentInfo(config: AgentConfig, nix: NixInfo, hostname: string = os.hostname()): AgentInfo {
  const candidate: AgentInfo = {
    hostname,
    agentVersion: NIMBUS_VERSION,
    nixVersion: nix.nixVersion,
    // Remote builders of these platforms build anything this machine can (Hercules' meaning).
    systems: [...new Set([...(config.systems ?? nix.systems), ...config.remotePlatformsWithSameFeatures])],
    systemFeatures: [...new Set(config.systemFeatures ?? nix.systemFeatures)],
    mandatoryFeatures: [...new Set(config.mandatoryFeatures)],
    substituters: nix.substituters,
    pushCaches: [],
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
