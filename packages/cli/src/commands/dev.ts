import { startLocalStack } from "@nimbus/local";
import type { Command } from "commander";
import { startEmbeddedAgent } from "../embedded-agent.ts";
import { defaultDataDir, defaultPort, type TargetOptions } from "../target.ts";

const log = (line: string) => process.stderr.write(`${line}\n`);

export function registerDevCommand(program: Command) {
  program
    .command("dev")
    .description("run the whole stack on this machine (what `npm start` runs)")
    .option("--no-agent", "do not start the embedded agent")
    .action(async (options: { agent: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<TargetOptions>();
      const stack = await startLocalStack({ port: defaultPort(globals.port), dataDir: defaultDataDir(globals.dataDir), log });
      const agent = options.agent ? await startEmbeddedAgent(stack, log) : undefined;
      log(
        [
          "",
          `Nimbus is running (data in ${stack.dataDir})`,
          `  dashboard  ${stack.url}/`,
          `  HTTP API   ${stack.url}/api`,
          `  webhooks   ${stack.url}/webhooks/github`,
          `  agents     ${stack.agentSocketUrl}`,
          agent ? "  one embedded agent is connecting (see `npx nimbus agents`)" : "  no embedded agent",
          "",
          `Open the dashboard and sign in with the API token: jq -r .ApiAdminToken ${stack.secretsPath}`,
          "",
          "Next, in another terminal:",
          "  npx nimbus token create > cluster-join-token.key   # a token for an agent of your own",
          "  npx nimbus agents                                  # who is connected",
          "Press Ctrl-C to stop.",
          "",
        ].join("\n"),
      );
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      log("stopping…");
      await agent?.stop();
      await stack.stop();
      log("stopped");
    });
}
