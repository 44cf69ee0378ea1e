import * as z from "zod";

/** A Nix system double such as `x86_64-linux`, or `builtin`. */
export const SystemName = z.string().regex(/^[A-Za-z0-9_.+-]{1,64}$/, "a Nix system such as x86_64-linux");
/** A Nix system feature such as `kvm` or `big-parallel`. */
export const FeatureName = z.string().regex(/^[A-Za-z0-9_.+-]{1,64}$/, "a Nix system feature such as kvm");

/** What an agent tells the service about itself in `hello` (Hercules' AgentInfo). */
export const AgentInfo = z.strictObject({
  hostname: z.string().min(1).max(255),
  agentVersion: z.string().min(1).max(64),
  nixVersion: z.string().min(1).max(64),
  /** Nix `system` first, then `extra-platforms`. */
  systems: z.array(SystemName).min(1).max(64),
  /** Nix `system-features`: what this agent may build. */
  systemFeatures: z.array(FeatureName).max(128),
  /** Features a derivation must require to be built here (Nix's mandatory features). */
  mandatoryFeatures: z.array(FeatureName).max(128),
  substituters: z.array(z.string().min(1).max(1024)).max(64),
  pushCaches: z.array(z.string().min(1).max(256)).max(64),
  /** The service never gives this agent more tasks at once. */
  concurrentTasks: z.number().int().min(1).max(1024),
  labels: z.record(z.string().max(128), z.json()),
});
export type AgentInfo = z.infer<typeof AgentInfo>;
