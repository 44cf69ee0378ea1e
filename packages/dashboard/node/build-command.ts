/** `npm run build -w @nimbus/dashboard` (and `prepare`, so `npm ci` leaves a built dashboard). */
import { buildDashboard } from "./build.ts";

const { outDir, files } = await buildDashboard();
const total = Object.values(files).reduce((sum, bytes) => sum + bytes, 0);
const listed = Object.entries(files)
  .filter(([file]) => !file.endsWith(".map"))
  .map(([file, bytes]) => `  ${file}  ${(bytes / 1024).toFixed(1)} KiB`);
process.stderr.write(`dashboard built into ${outDir} (${(total / 1024).toFixed(0)} KiB with source maps)\n${listed.join("\n")}\n`);
