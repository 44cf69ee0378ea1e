import { printable } from "@nimbus/agent/terminal-text";
import { DerivationLog } from "@nimbus/protocol";
import type { Command } from "commander";
import { ApiClient } from "../api-client.ts";
import { resolveTarget, type TargetOptions } from "../target.ts";

export function registerLogsCommand(program: Command) {
  program
    .command("logs <drv>")
    .description("the build log of a derivation's latest attempt (a /nix/store/….drv path or its basename)")
    .action(async (drv: string, _options: unknown, command: Command) => {
      const api = new ApiClient(resolveTarget(command.optsWithGlobals<TargetOptions>()));
      const log = await api.get(`/api/derivations/${encodeURIComponent(drv)}/log`, DerivationLog);
      if (log.truncated) process.stderr.write(`(the log is longer: showing its last ${log.lines.length} lines)\n`);
      // A builder's output: shown as text, never as terminal commands.
      process.stdout.write(log.lines.map((l) => `${printable(l)}\n`).join(""));
    });
}
