#!/usr/bin/env node
// The CLI is TypeScript run through tsx; refuse old Node before anything fails obscurely.
const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  process.stderr.write(`nimbus needs Node.js 22 or newer (this is ${process.version}) — install it, e.g. \`npm install -g node@22\`\n`);
  process.exit(1);
}
// fauxqs loads node:sqlite, whose ExperimentalWarning would greet every `nimbus dev`.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) =>
  String(warning).includes("SQLite is an experimental feature") ? undefined : emitWarning(warning, ...rest);
const { register } = await import("tsx/esm/api");
register();
await import("../src/main.ts");
