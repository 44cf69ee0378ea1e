import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { RunningAgent } from "@nimbus/agent";
import { CreateTokenResponse } from "@nimbus/protocol";
import { ApiClient } from "./api-client.ts";

const run = promisify(execFile);

async function nixInstalled(): Promise<boolean> {
  try {
    await run("nix", ["--version"]);
    return true;
  } catch {
    return false;
  }
}

/**
 * The agent `nimbus dev` runs beside the stack, configured like any other agent: a token made
 * through the API, and an agent.toml under `<data dir>/agent` (rewritten each start, since the port may change).
 */
export async function startEmbeddedAgent(
  stack: { url: string; adminToken: string; dataDir: string },
  log: (line: string) => void,
): Promise<RunningAgent | undefined> {
  if (!(await nixInstalled())) {
    log("Nix is not installed: no embedded agent (install it, e.g. `apt-get install -y nix-bin`, or run one elsewhere)");
    return undefined;
  }
  const dir = join(stack.dataDir, "agent");
  await mkdir(dir, { recursive: true });
  const tokenPath = join(dir, "cluster-join-token.key");
  if (!existsSync(tokenPath)) {
    const api = new ApiClient({ baseUrl: stack.url, token: stack.adminToken, dataDir: stack.dataDir });
    const { token } = await api.post("/api/tokens", CreateTokenResponse, { name: "embedded-agent" });
    await writeFile(tokenPath, `${token}\n`, { mode: 0o600 });
  }
  const configPath = join(dir, "agent.toml");
  await writeFile(
    configPath,
    [
      "# Written by `nimbus dev` at every start; run your own agents with a file of your own.",
      `apiBaseUrl = ${JSON.stringify(stack.url)}`,
      `clusterJoinTokenPath = "cluster-join-token.key"`,
      `workDirectory = "work"`,
      "# Ctrl-C on `nimbus dev` should not wait for builds: hand them back to the queues.",
      `shutdown = "hand-back"`,
      "# Works offline: Nix substitutes from no cache (nix.conf's cache.nixos.org would cost a DNS wait per build).",
      "machineSubstituters = false",
      "# `nimbus trigger` sends repositories on this machine's disk.",
      "allowLocalRepositories = true",
      "# The stack's own data (its admin token, webhook secret, tables) is no business of evaluated code.",
      `evaluationHiddenPaths = [${JSON.stringify(stack.dataDir)}]`,
      "",
      "[labels]",
      "embedded = true",
      "",
    ].join("\n"),
  );
  // Loaded only here: the CLI's other commands start without the agent's modules.
  const { loadAgentConfig, startAgent } = await import("@nimbus/agent");
  return startAgent(await loadAgentConfig(configPath), { log });
}
