/**
 * What a repository's `herculesCI` function is called with: Hercules' arguments (docs/effects.md,
 * "herculesCI"). `primaryRepo.outPath` is added by the walker (the checkout, or the flake's source).
 */
import type { EvaluateTask } from "@nimbus/protocol";
import { redactCredentials } from "./git-checkout.ts";

export interface HerculesCIArgs {
  rev: string;
  shortRev: string;
  ref: string;
  branch: string | null;
  tag: string | null;
  primaryRepo: {
    ref: string;
    branch: string | null;
    tag: string | null;
    rev: string;
    shortRev: string;
    owner: string | null;
    name: string;
    forgeType: string | null;
    remoteHttpUrl: string | null;
    remoteSshUrl: string | null;
    webUrl: string | null;
  };
  herculesCI: { apiBaseUrl: string; ciSystems: null };
}

export function herculesCIArgs(task: Pick<EvaluateTask, "ref" | "commit" | "cloneUrl" | "repository">, apiBaseUrl: string): HerculesCIArgs {
  const ref = task.ref ?? "";
  const branch = ref.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : null;
  const tag = ref.startsWith("refs/tags/") ? ref.slice("refs/tags/".length) : null;
  const shortRev = task.commit.slice(0, 7);
  // Never a credential: a URL with one is shown without it.
  const http = /^https?:\/\//.test(task.cloneUrl) ? redactCredentials(task.cloneUrl).replace("***@", "") : null;
  const ssh = /^(ssh:\/\/|[^/:]+@[^/:]+:)/.test(task.cloneUrl) ? task.cloneUrl : null;
  const [owner, name] = task.repository.includes("/") ? task.repository.split("/", 2) : [null, task.repository];
  const github = http?.startsWith("https://github.com/") ?? false;
  return {
    rev: task.commit,
    shortRev,
    ref,
    branch,
    tag,
    primaryRepo: {
      ref,
      branch,
      tag,
      rev: task.commit,
      shortRev,
      owner: owner ?? null,
      name: name ?? task.repository,
      forgeType: github ? "github" : null,
      remoteHttpUrl: http,
      remoteSshUrl: ssh,
      webUrl: github && http ? http.replace(/\.git$/, "") : null,
    },
    // ciSystems is null, as Hercules passes when the project sets none: `herculesCI.ciSystems` in the result limits them.
    herculesCI: { apiBaseUrl, ciSystems: null },
  };
}
