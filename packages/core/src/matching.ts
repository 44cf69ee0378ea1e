import type { AgentInfo } from "@nimbus/protocol";

/**
 * Nix's rule for whether a machine may build a derivation (`machines.cc`: `systemSupported`,
 * `allSupported`, `mandatoryMet`), kept exactly (docs/architecture.md, "Where the rules live").
 */
export interface BuilderCapabilities {
  systems: readonly string[];
  supportedFeatures: readonly string[];
  mandatoryFeatures: readonly string[];
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

export const canBuild = (builder: BuilderCapabilities, drv: BuildRequirements): boolean =>
  systemSupported(builder, drv.system) &&
  allRequiredFeaturesSupported(builder, drv.requiredFeatures) &&
  mandatoryFeaturesMet(builder, drv.requiredFeatures);

/** What an agent's hello says it can build, in the rule's terms. */
export const capabilitiesOf = (agent: Pick<AgentInfo, "systems" | "systemFeatures" | "mandatoryFeatures">): BuilderCapabilities => ({
  systems: agent.systems,
  supportedFeatures: agent.systemFeatures,
  mandatoryFeatures: agent.mandatoryFeatures,
});
