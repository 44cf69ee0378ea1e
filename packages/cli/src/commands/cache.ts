/** `nimbus cache info` and `nimbus cache token create|list|revoke`: the built-in cache (docs/cache.md). */
import { CacheInfoView, CacheTokenList, CacheTokenView, CreateCacheTokenResponse } from "@nimbus/protocol";
import type { Command } from "commander";
import { ApiClient } from "../api-client.ts";
import { CliError } from "../cli-error.ts";
import { formatTable } from "../table.ts";
import { resolveTarget, type TargetOptions } from "../target.ts";

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** `30d`, `12h`, `90m`, `2w`, `3600s` (or plain seconds) → seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhdw]?)$/.exec(text.trim());
  if (!match || Number(match[1]) === 0) throw new CliError(`--expires takes a duration such as 30d, 12h or 90m, not ${JSON.stringify(text)}`);
  return Number(match[1]) * UNITS[match[2] || "s"]!;
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function registerCacheCommands(program: Command) {
  const cache = program.command("cache").description("the built-in binary cache");
  const api = (command: Command) => new ApiClient(resolveTarget(command.optsWithGlobals<TargetOptions>()));

  cache
    .command("info")
    .description("the cache's URL, public key, size, and the nix.conf lines to use it")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }, command: Command) => {
      const info = await api(command).get("/api/cache", CacheInfoView);
      if (options.json) return void process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
      const host = new URL(info.url).hostname;
      const collection = info.lastCollection
        ? `${info.lastCollection.at} (removed ${info.lastCollection.removedPaths} paths, ${bytes(info.lastCollection.removedBytes)})`
        : "never";
      process.stdout.write(
        [
          `url:              ${info.url}`,
          `public key:       ${info.publicKey}`,
          `paths:            ${info.pathCount}`,
          `size:             ${bytes(info.fileBytes)} stored (${bytes(info.narBytes)} unpacked)`,
          `retention:        ${info.retentionDays} days unused`,
          `last collection:  ${collection}`,
          "",
          "# nix.conf (or --option NAME VALUE):",
          `substituters = ${info.url}`,
          `trusted-public-keys = ${info.publicKey}`,
          "netrc-file = /etc/nix/netrc",
          "",
          "# /etc/nix/netrc (mode 0600), with a token from `nimbus cache token create --read`:",
          `machine ${host} login token password <token>`,
          "",
        ].join("\n"),
      );
    });

  const token = cache.command("token").description("tokens scoped to the built-in cache");

  token
    .command("create")
    .description("create a cache token and print it, alone, on stdout (shown only once)")
    .option("--read", "it reads the cache")
    .option("--write", "it reads the cache and pushes to it (nix copy --to)")
    .option("--expires <duration>", "it stops working after this long: 30d, 12h, 90m")
    .option("--name <name>", "a name to recognise it by in `nimbus cache token list`")
    .action(async (options: { read?: boolean; write?: boolean; expires?: string; name?: string }, command: Command) => {
      if (options.read === options.write) throw new CliError("say what the token may do: --read or --write");
      const body = {
        access: options.write ? "write" : "read",
        ...(options.name ? { name: options.name } : {}),
        ...(options.expires ? { expiresInSeconds: parseDuration(options.expires) } : {}),
      };
      const created = await api(command).post("/api/cache/tokens", CreateCacheTokenResponse, body);
      process.stdout.write(`${created.token}\n`);
      process.stderr.write(
        `created ${created.access} token ${created.id} (${created.name})${created.expiresAt ? `, expires ${created.expiresAt}` : ""}; put it in a netrc file: \`nimbus cache info\` shows how\n`,
      );
    });

  token
    .command("list")
    .description("list cache tokens (never their secrets)")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }, command: Command) => {
      const { tokens } = await api(command).get("/api/cache/tokens", CacheTokenList);
      if (options.json) return void process.stdout.write(`${JSON.stringify({ tokens }, null, 2)}\n`);
      const now = new Date().toISOString();
      const status = (t: CacheTokenView) => (t.revokedAt ? `revoked ${t.revokedAt}` : t.expiresAt && t.expiresAt <= now ? `expired ${t.expiresAt}` : t.expiresAt ? `until ${t.expiresAt}` : "active");
      process.stdout.write(formatTable(["ID", "NAME", "ACCESS", "CREATED", "STATUS"], tokens.map((t) => [t.id, t.name, t.access, t.createdAt, status(t)])));
    });

  token
    .command("revoke <id>")
    .description("revoke a cache token; it is refused from its next request on")
    .action(async (id: string, _options: unknown, command: Command) => {
      const revoked = await api(command).delete(`/api/cache/tokens/${encodeURIComponent(id)}`, CacheTokenView);
      process.stderr.write(`revoked cache token ${revoked.id} (${revoked.name}) at ${revoked.revokedAt}\n`);
    });
}
