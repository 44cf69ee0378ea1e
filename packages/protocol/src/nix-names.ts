import * as z from "zod";

/** An absolute store path such as `/nix/store/<hash>-name`. */
export const StorePath = z.string().regex(/^\/[^\s\0]+$/, "an absolute store path").max(1024);
/** A store derivation, `/nix/store/<hash>-name.drv`. */
export const DrvPath = z.string().regex(/^\/[^\s\0]+\.drv$/, "a store path ending in .drv").max(1024);
/** An attribute path in ci.nix or the flake, e.g. ["packages", "x86_64-linux", "hello"]. */
export const AttributePath = z.array(z.string().min(1).max(256)).min(1).max(32);
export type AttributePath = z.infer<typeof AttributePath>;
