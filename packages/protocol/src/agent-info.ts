import * as z from "zod";
import { CacheName, StoreId } from "./sources.ts";

/** A Nix system double such as `x86_64-linux`, or `builtin`. */
export const SystemName = z.string().regex(/^[A-Za-z0-9_.+-]{1,64}$/, "a Nix system such as x86_64-linux");
/** A Nix system feature such as `kvm` or `big-parallel`. */
export const FeatureName = z.string().regex(/^[A-Za-z0-9_.+-]{1,64}$/, "a Nix system feature such as kvm");

/** A configured cache as an agent reports it: name, kind, public keys, and whether it pushes to it and reads from it. */
export const CacheInfo = z.strictObject({
  name: CacheName,
  /** `NimbusCache`: the built-in cache (docs/cache.md), always named `nimbus`. */
  kind: z.enum(["NixCache", "CachixCache", "AtticCache", "NimbusCache"]),
  publicKeys: z.array(z.string().min(1).max(256)).max(16),
  push: z.boolean(),
  pull: z.boolean(),
});
export type CacheInfo = z.infer<typeof CacheInfo>;

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
  /** Every substituter its Nix uses: the machine's own (unless turned off) and every configured cache's URL. */
  substituters: z.array(z.string().min(1).max(1024)).max(64),
  /** Names of the caches it pushes to (Hercules' pushCaches). */
  pushCaches: z.array(z.string().min(1).max(256)).max(64),
  /** The caches of its binary-caches.json as the service may know them: never a token or a signing key. */
  caches: z.array(CacheInfo).max(64).optional(),
  /** Which Nix store it builds in; absent, nothing is known of what it holds. */
  storeId: StoreId.optional(),
  /** The service never gives this agent more tasks at once. */
  concurrentTasks: z.number().int().min(1).max(1024),
  labels: z.record(z.string().max(128), z.json()),
});
export type AgentInfo = z.infer<typeof AgentInfo>;

