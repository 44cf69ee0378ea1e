/**
 * Every schema of the wire and the API. Modules import zod as `import * as z`, not `import { z }`:
 * the dashboard bundles these for the browser, and only the namespace import lets esbuild drop
 * the parts of zod nothing uses (`{ z }` keeps all its locales, 300 KB more).
 */
export * from "./version.ts";
export * from "./limits.ts";
export * from "./agent-info.ts";
export * from "./messages.ts";
export * from "./api.ts";
export * from "./decode.ts";
export * from "./nix-names.ts";
export * from "./tasks.ts";
export * from "./jobs-api.ts";
export * from "./sources.ts";
export * from "./dashboard-api.ts";
