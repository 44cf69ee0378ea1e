export * from "./version.ts";
export * from "./limits.ts";
export * from "./agent-info.ts";
export * from "./messages.ts";
export * from "./api.ts";
export * from "./decode.ts";
