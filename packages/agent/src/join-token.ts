/** The cluster join token: the secret the agent presents as `Authorization: Bearer …`. */
import { readFile } from "node:fs/promises";
import { AgentConfigError } from "./errors.ts";

/** Header-safe and what `nimbus token create` prints: visible ASCII, no spaces. */
const TOKEN_SHAPE = /^[\x21-\x7e]+$/;

/** Reads the token file once, at start; the file holds the token and maybe a trailing newline. */
export async function readClusterJoinToken(tokenPath: string): Promise<string> {
  const howToFix = `create one with \`nimbus token create > ${tokenPath}\``;
  let text: string;
  try {
    text = await readFile(tokenPath, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new AgentConfigError(`cluster join token file ${tokenPath} does not exist — ${howToFix}`);
    }
    throw new AgentConfigError(`cannot read cluster join token file ${tokenPath} (${code ?? String(err)})`);
  }
  const token = text.trim();
  if (token === "") throw new AgentConfigError(`cluster join token file ${tokenPath} is empty — ${howToFix}`);
  if (!TOKEN_SHAPE.test(token)) {
    throw new AgentConfigError(`cluster join token file ${tokenPath} does not hold a single token — ${howToFix}`);
  }
  return token;
}
