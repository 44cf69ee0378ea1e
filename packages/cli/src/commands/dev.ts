import type { Command } from "commander";
import { CliError } from "../cli-error.ts";
import { startEmbeddedAgent } from "../embedded-agent.ts";
import { SignInCode } from "@nimbus/protocol";
import { ApiClient } from "../api-client.ts";
import { defaultDataDir, defaultPort, type Target, type TargetOptions } from "../target.ts";

const log = (line: string) => process.stderr.write(`${line}\n`);

/**
 * The local stack (dynalite, fauxqs, LevelDB and the service's handlers) is loaded only here:
 * a checkout of the repository has it, the packed package for build machines does not.
 */
async function loadLocalStack(): Promise<typeof import("@nimbus/local")> {
  try {
    return await import("@nimbus/local");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const absent = (code === "ERR_MODULE_NOT_FOUND" && String(error).includes("@nimbus/local")) || code === "ERR_UNKNOWN_FILE_EXTENSION";
    if (!absent) throw error;
    throw new CliError(
      "`nimbus dev` runs the whole Nimbus stack and needs a checkout of the repository (git clone it, then `npm ci` and `npm start`); " +
        "this installation has only the agent and the CLI",
    );
  }
}

/** The local stack's own start errors (a port in use, a data directory of an older schema, a bad secrets file) say what to do: shown alone. */
function startFailure(local: typeof import("@nimbus/local"), error: unknown): unknown {
  const known = [local.PortInUseError, local.TableSchemaError, local.SecretsFileError];
  return known.some((type) => error instanceof type) ? new CliError((error as Error).message) : error;
}

export function registerDevCommand(program: Command) {
  program
    .command("dev")
    .description("run the whole stack on this machine (what `npm start` runs)")
    .option("--no-agent", "do not start the embedded agent")
    .action(async (options: { agent: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<TargetOptions>();
      const local = await loadLocalStack();
      // Listening before anything is printed: a Ctrl-C right after the banner stops cleanly, and
      // one during startup stops once the stack is up. A second one is Node's default: exit at once.
      const stopRequested = new Promise<void>((resolve) => {
        process.once("SIGINT", () => resolve());
        process.once("SIGTERM", () => resolve());
      });
      const stack = await local
        .startLocalStack({ port: defaultPort(globals.port), dataDir: defaultDataDir(globals.dataDir), log })
        .catch((error: unknown) => Promise.reject(startFailure(local, error)));
      const agent = options.agent ? await startEmbeddedAgent(stack, log) : undefined;
      const signIn = await signInLink({ baseUrl: stack.url, token: stack.adminToken, dataDir: stack.dataDir });
      log(
        [
          "",
          `Nimbus is running (data in ${stack.dataDir})`,
          `  dashboard  ${stack.url}/`,
          `  HTTP API   ${stack.url}/api`,
          `  webhooks   ${stack.url}/webhooks/github`,
          `  agents     ${stack.agentSocketUrl}`,
          `  cache      ${stack.url}/cache   (npx nimbus cache info)`,
          agent ? "  one embedded agent is connecting (see `npx nimbus agents`)" : "  no embedded agent",
          "",
          `Open the dashboard (this link signs in once, within 5 minutes; \`npx nimbus dashboard\` prints another):`,
          `  ${signIn}`,
          "",
          "Next, in another terminal:",
          "  npx nimbus token create > cluster-join-token.key   # a token for an agent of your own",
          "  npx nimbus agents                                  # who is connected",
          "Press Ctrl-C to stop.",
          "",
        ].join("\n"),
      );
      await stopRequested;
      log("stopping…");
      await agent?.stop();
      await stack.stop();
      log("stopped");
    });
}

/** A one-time sign-in link, as `nimbus dashboard` prints it. */
async function signInLink(target: Target): Promise<string> {
  const { code } = await new ApiClient(target).post("/api/dashboard/codes", SignInCode);
  return `${target.baseUrl}/sign-in?code=${encodeURIComponent(code)}`;
}
