import { SignInCode } from "@nimbus/protocol";
import type { Command } from "commander";
import { ApiClient } from "../api-client.ts";
import { resolveTarget, type TargetOptions } from "../target.ts";

/**
 * `nimbus dashboard`: a sign-in link to the dashboard with a one-time code, as Jupyter prints
 * its token link. The code works once, for five minutes; the browser keeps a session cookie,
 * never the API token (docs/dashboard-api.md, "Sign-in and sessions").
 */
export function registerDashboardCommand(program: Command) {
  program
    .command("dashboard")
    .description("prints a sign-in link (one-time code) to the dashboard")
    .action(async (_options: unknown, command: Command) => {
      const target = resolveTarget(command.optsWithGlobals<TargetOptions>());
      const { code, expiresAt } = await new ApiClient(target).post("/api/dashboard/codes", SignInCode);
      process.stdout.write(`${target.baseUrl}/sign-in?code=${encodeURIComponent(code)}\n`);
      const minutes = Math.max(1, Math.round((Date.parse(expiresAt) - Date.now()) / 60_000));
      process.stderr.write(`open it in a browser within ${minutes} minute${minutes === 1 ? "" : "s"}: it signs in once\n`);
    });
}
