/**
 * The stack's GitHub side (docs/github.md): the settings from its secrets and environment, and
 * the client (App or personal token, with its in-memory token cache), reporter and webhook
 * policy made from them — once per container, again only if the settings change (a local
 * stack restarted with another data directory).
 */
import { createHash } from "node:crypto";
import {
  createGithubClient,
  createReporter,
  githubConfigFrom,
  webhookPolicy,
  type GithubClient,
  type GithubConfig,
  type GithubSecrets,
  type Reporter,
  type WebhookPolicy,
} from "@nimbus/github";
import { httpApiUrl, secretValue } from "./linked-resources.ts";
import { githubSecrets } from "./resource-specs.ts";

export interface Github {
  config: GithubConfig;
  policy: WebhookPolicy;
  /** App or token mode; absent when reporting is off. */
  reporting?: { client: GithubClient; reporter: Reporter; publicUrl: string };
}

let made: { key: string; github: Github } | undefined;

/** Throws a GithubConfigError naming the setting that is wrong (never its value). */
export function github(): Github {
  const secrets: GithubSecrets = Object.fromEntries(githubSecrets.map((name) => [name, secretValue(name)]));
  const env = { NIMBUS_GITHUB_API_URL: process.env.NIMBUS_GITHUB_API_URL, NIMBUS_PUBLIC_URL: process.env.NIMBUS_PUBLIC_URL };
  const fallbackUrl = httpApiUrl();
  const key = createHash("sha256").update(JSON.stringify([secrets, env, fallbackUrl])).digest("base64url");
  if (made?.key === key) return made.github;
  const config = githubConfigFrom(secrets, env, fallbackUrl);
  const github: Github = { config, policy: webhookPolicy(config) };
  if (config.mode !== "off") {
    const client = createGithubClient(config);
    github.reporting = { client, reporter: createReporter(client), publicUrl: config.publicUrl };
  }
  made = { key, github };
  return github;
}
