export * from "./matching.ts";
