export * from "./matching.ts";
export * from "./queue-key.ts";
export * from "./statuses.ts";
export * from "./readiness.ts";
export * from "./job-outcome.ts";
