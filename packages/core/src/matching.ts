import type { AgentInfo } from "@nimbus/protocol";

/**
 * Nix's rule for whether a machine may build a derivation (`machines.cc`: `systemSupported`,
 * `allSupported`, `mandatoryMet`), kept exactly (docs/architecture.md, "Where the rules live").
 */
export interface BuilderCapabilities {
  systems: readonly string[];
  supportedFeatures: readonly string[];
  mandatoryFeatures: readonly string[];
  /**
   * The remote builders the agent's Nix has (docs/agent.md, "Remote builders"): each a machine
   * of its own, judged by the rule on its own — never merged into one flat list, which would
   * lose what each one's mandatory features exclude.
   */
  remotes?: readonly BuilderCapabilities[];
}

export interface BuildRequirements {
  system: string;
  requiredFeatures: readonly string[];
}

/** `builtin` derivations (fetchurl & co.) run inside Nix itself, on any machine. */
export const systemSupported = (builder: BuilderCapabilities, system: string): boolean =>
  system === "builtin" || builder.systems.includes(system);

/** Every required feature is supported or mandatory on the builder. */
export const allRequiredFeaturesSupported = (builder: BuilderCapabilities, required: readonly string[]): boolean =>
  required.every((f) => builder.supportedFeatures.includes(f) || builder.mandatoryFeatures.includes(f));

/** A builder with mandatory features takes only derivations that require all of them. */
export const mandatoryFeaturesMet = (builder: BuilderCapabilities, required: readonly string[]): boolean =>
  builder.mandatoryFeatures.every((f) => required.includes(f));

/** One machine (the agent's own, or one remote builder) may build it. */
export const machineCanBuild = (builder: BuilderCapabilities, drv: BuildRequirements): boolean =>
  systemSupported(builder, drv.system) &&
  allRequiredFeaturesSupported(builder, drv.requiredFeatures) &&
  mandatoryFeaturesMet(builder, drv.requiredFeatures);

/** The agent may build it: its own machine may, or one of its remote builders may, each by Nix's rule. */
export const canBuild = (builder: BuilderCapabilities, drv: BuildRequirements): boolean =>
  machineCanBuild(builder, drv) || (builder.remotes ?? []).some((remote) => machineCanBuild(remote, drv));

/** What an agent's hello says it can build, in the rule's terms. */
export const capabilitiesOf = (agent: Pick<AgentInfo, "systems" | "systemFeatures" | "mandatoryFeatures" | "remoteBuilders">): BuilderCapabilities => ({
  systems: agent.systems,
  supportedFeatures: agent.systemFeatures,
  mandatoryFeatures: agent.mandatoryFeatures,
  ...(agent.remoteBuilders?.length
    ? { remotes: agent.remoteBuilders.map((r) => ({ systems: r.systems, supportedFeatures: r.supportedFeatures, mandatoryFeatures: r.mandatoryFeatures })) }
    : {}),
});
