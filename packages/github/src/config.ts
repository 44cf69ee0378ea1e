/**
 * The GitHub settings of a stack: which way Nimbus talks to GitHub (an App, a personal token,
 * or not at all), where the API is, and the public URL reports link to. See docs/github.md.
 */
import { createPrivateKey } from "node:crypto";
import { z } from "zod";

export const DEFAULT_API_BASE_URL = "https://api.github.com";

/** An http(s) URL without a trailing slash, so paths can be appended. */
const BaseUrl = z
  .url({ protocol: /^https?$/, error: "an http(s) URL" })
  .transform((url) => url.replace(/\/+$/, ""));

const WebhookSecret = z.string().min(1, "the webhook secret must not be empty");

/** A PEM private key as GitHub hands it out (PKCS#1 `RSA PRIVATE KEY`) or PKCS#8. */
const PrivateKey = z.string().superRefine((pem, ctx) => {
  try {
    if (createPrivateKey(pem).asymmetricKeyType === "rsa") return;
    ctx.addIssue({ code: "custom", message: "must be an RSA key (GitHub App keys are)" });
  } catch {
    // Never echo the value: it is a secret.
    ctx.addIssue({ code: "custom", message: "is not a PEM private key — paste the whole .pem file GitHub generated" });
  }
});

export const GithubAppConfig = z.strictObject({
  mode: z.literal("app"),
  appId: z.int().positive(),
  privateKey: PrivateKey,
  webhookSecret: WebhookSecret,
  apiBaseUrl: BaseUrl,
  publicUrl: BaseUrl,
});
export type GithubAppConfig = z.infer<typeof GithubAppConfig>;

/** Commit statuses only, with one token (classic `repo:status`, or fine-grained "Commit statuses: write"). */
export const GithubTokenConfig = z.strictObject({
  mode: z.literal("token"),
  token: z.string().min(1),
  webhookSecret: WebhookSecret,
  apiBaseUrl: BaseUrl,
  publicUrl: BaseUrl,
});
export type GithubTokenConfig = z.infer<typeof GithubTokenConfig>;

/** Webhooks start jobs; nothing is reported back. */
export const GithubOffConfig = z.strictObject({
  mode: z.literal("off"),
  webhookSecret: WebhookSecret,
});
export type GithubOffConfig = z.infer<typeof GithubOffConfig>;

export const GithubConfig = z.discriminatedUnion("mode", [GithubAppConfig, GithubTokenConfig, GithubOffConfig]);
export type GithubConfig = z.infer<typeof GithubConfig>;

/** The secret names, as `sst.Secret`s in AWS and keys of `<data dir>/secrets.json` locally. */
export const GITHUB_SECRET_NAMES = ["GithubAppId", "GithubAppPrivateKey", "GithubWebhookSecret", "GithubToken"] as const;
export type GithubSecrets = Partial<Record<(typeof GITHUB_SECRET_NAMES)[number], string>>;

export interface GithubEnvironment {
  /** Another API base URL (tests use a stand-in; GitHub Enterprise Server uses `https://HOST/api/v3`). */
  NIMBUS_GITHUB_API_URL?: string;
  /** The public base URL of the dashboard; reports link to `${publicUrl}/jobs/<id>`. */
  NIMBUS_PUBLIC_URL?: string;
}

export class GithubConfigError extends Error {
  override readonly name = "GithubConfigError";
}

/**
 * The settings from the stack's secrets and environment. An App id selects App mode, else a
 * token selects token mode, else reporting is off. Secrets left at a placeholder (empty or
 * `none`: `sst.Secret` needs one) count as unset. `fallbackPublicUrl` is used when
 * NIMBUS_PUBLIC_URL is unset (the service passes its HTTP API URL).
 */
export function githubConfigFrom(secrets: GithubSecrets, env: GithubEnvironment, fallbackPublicUrl?: string): GithubConfig {
  const given = (value: string | undefined) => {
    const trimmed = value?.trim();
    return trimmed && trimmed !== "none" ? trimmed : undefined;
  };
  const appId = given(secrets.GithubAppId);
  const token = given(secrets.GithubToken);
  const webhookSecret = given(secrets.GithubWebhookSecret);
  const common = {
    webhookSecret,
    apiBaseUrl: given(env.NIMBUS_GITHUB_API_URL) ?? DEFAULT_API_BASE_URL,
    publicUrl: given(env.NIMBUS_PUBLIC_URL) ?? fallbackPublicUrl,
  };
  const candidate = appId
    ? {
        mode: "app",
        ...common,
        appId: /^\d+$/.test(appId) ? Number(appId) : appId,
        // A key pasted into one line of an environment or secret store keeps its newlines as "\n".
        privateKey: given(secrets.GithubAppPrivateKey)?.replace(/\\n/g, "\n").trim(),
      }
    : token
      ? { mode: "token", ...common, token }
      : { mode: "off", webhookSecret };
  const parsed = GithubConfig.safeParse(candidate);
  if (parsed.success) return parsed.data;
  const names: Record<string, string> = {
    appId: "GithubAppId (the App's numeric id)",
    privateKey: "GithubAppPrivateKey",
    webhookSecret: "GithubWebhookSecret",
    token: "GithubToken",
    apiBaseUrl: "NIMBUS_GITHUB_API_URL",
    publicUrl: "NIMBUS_PUBLIC_URL",
  };
  const problems = parsed.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? "");
    const what = names[key] ?? key;
    return (candidate as Record<string, unknown>)[key] === undefined ? `${what} is not set` : `${what}: ${issue.message}`;
  });
  throw new GithubConfigError(`GitHub settings (${String(candidate.mode)} mode): ${problems.join("; ")} — see docs/github.md`);
}
