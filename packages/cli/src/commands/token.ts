import { CreateTokenResponse, TokenList, TokenView } from "@nimbus/protocol";
import type { Command } from "commander";
import { ApiClient } from "../api-client.ts";
import { formatTable } from "../table.ts";
import { resolveTarget, type TargetOptions } from "../target.ts";

export function registerTokenCommands(program: Command) {
  const token = program.command("token").description("cluster join tokens for agents");

  token
    .command("create")
    .description("create a cluster join token and print it, alone, on stdout (shown only once)")
    .option("--name <name>", "a name to recognise it by in `nimbus token list`")
    .action(async (options: { name?: string }, command: Command) => {
      const api = new ApiClient(resolveTarget(command.optsWithGlobals<TargetOptions>()));
      const created = await api.post("/api/tokens", CreateTokenResponse, options.name ? { name: options.name } : {});
      process.stdout.write(`${created.token}\n`);
      process.stderr.write(`created token ${created.id} (${created.name}); write it to the file agent.toml's clusterJoinTokenPath names\n`);
    });

  token
    .command("list")
    .description("list tokens (never their secrets)")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }, command: Command) => {
      const api = new ApiClient(resolveTarget(command.optsWithGlobals<TargetOptions>()));
      const { tokens } = await api.get("/api/tokens", TokenList);
      if (options.json) return void process.stdout.write(`${JSON.stringify({ tokens }, null, 2)}\n`);
      const rows = tokens.map((t) => [t.id, t.name, t.createdAt, t.revokedAt ? `revoked ${t.revokedAt}` : "active"]);
      process.stdout.write(formatTable(["ID", "NAME", "CREATED", "STATUS"], rows));
    });

  token
    .command("revoke <id>")
    .description("revoke a token; agents using it are disconnected and refused from then on")
    .action(async (id: string, _options: unknown, command: Command) => {
      const api = new ApiClient(resolveTarget(command.optsWithGlobals<TargetOptions>()));
      const revoked = await api.delete(`/api/tokens/${encodeURIComponent(id)}`, TokenView);
      process.stderr.write(`revoked token ${revoked.id} (${revoked.name}) at ${revoked.revokedAt}\n`);
    });
}
