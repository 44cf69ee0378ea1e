#!/usr/bin/env node
// Refuse old Node before anything fails obscurely.
const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  process.stderr.write(`nimbus needs Node.js 22 or newer (this is ${process.version}) — install it, e.g. \`npm install -g node@22\`\n`);
  process.exit(1);
}
// fauxqs loads node:sqlite, whose ExperimentalWarning would greet every `nimbus dev`.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) =>
  String(warning).includes("SQLite is an experimental feature") ? undefined : emitWarning(warning, ...rest);

const { existsSync } = await import("node:fs");
const source = new URL("../src/main.ts", import.meta.url);
if (existsSync(source)) {
  // A checkout of the repository: the TypeScript source through tsx, so an edit needs no build.
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
} else {
  // The packed package (`npm run package`): the bundle alone, no TypeScript loader.
  await import("../dist/nimbus.js");
}
