import assert from "node:assert/strict";
import { inspect } from "node:util";
import { after, before, beforeEach, describe, it } from "node:test";
import { GithubStandin, testAppKeys } from "../../../test/support/github-standin.ts";
import { createGithubClient, NoAppError, NotInstalledError, type GithubClient } from "../src/client.ts";
import { CloneCredential, mintCloneCredential } from "../src/clone-credential.ts";
import type { GithubAppConfig, GithubTokenConfig } from "../src/config.ts";
import { repositoryPermission } from "../src/repository-permission.ts";

const APP_ID = 4242;
const keys = testAppKeys();
const T0 = Date.parse("2025-01-01T10:00:00.000Z");
let clock = T0;
const now = () => new Date(clock);
const MINUTE = 60_000;

let standin: GithubStandin;
let config: GithubAppConfig;

before(async () => {
  standin = await GithubStandin.start({
    appId: APP_ID,
    appPublicKey: keys.publicKey,
    now,
    installations: [
      { id: 7, account: "octo", repositories: ["octo/hello", "octo/other"], permissions: { checks: "write", contents: "read", metadata: "read", pull_requests: "read", statuses: "write" } },
    ],
    personalTokens: ["ghp_personal"],
    collaborators: { "octo/hello": { maintainer: "write", triager: "read", owner: "admin" } },
  });
  config = { mode: "app", appId: APP_ID, privateKey: keys.privateKey, webhookSecret: "s", apiBaseUrl: standin.url, publicUrl: "https://nimbus.example.org" };
});
after(() => standin.close());
beforeEach(() => {
  clock = T0;
  standin.requests.length = 0;
});

const hello = { owner: "octo", repo: "hello" };
const appClient = (): GithubClient => createGithubClient(config, { now });

describe("App client", () => {
  it("finds the repository's installation with the App's JWT and mints a token for that repository and those permissions only", async () => {
    const client = appClient();
    const octokit = await client.forRepository(hello, { checks: "write" });
    assert.deepEqual(
      standin.requests.map((r) => [r.method, r.path, r.auth.kind, r.status]),
      [
        ["GET", "/repos/octo/hello/installation", "app-jwt", 200],
        ["POST", "/app/installations/7/access_tokens", "app-jwt", 201],
      ],
    );
    assert.deepEqual(standin.requests[1]!.body, { repositories: ["hello"], permissions: { checks: "write" } });
    const issued = standin.tokens.at(-1)!;
    assert.deepEqual(issued.repositories, ["octo/hello"]);
    assert.deepEqual(issued.permissions, { metadata: "read", checks: "write" });

    // The token reaches this repository's checks, and nothing else.
    const sha = "a".repeat(40);
    const { status } = await octokit.rest.checks.create({ ...hello, name: "t", head_sha: sha });
    assert.equal(status, 201);
    assert.equal(standin.requests.at(-1)!.auth.kind, "installation-token");
    await assert.rejects(octokit.rest.checks.create({ owner: "octo", repo: "other", name: "t", head_sha: sha }), { status: 404 });
    await assert.rejects(octokit.rest.repos.createCommitStatus({ ...hello, sha, state: "success" }), { status: 403 });
  });

  it("reuses a token until five minutes before it expires, then mints a new one", async () => {
    const client = appClient();
    const mints = () => standin.requests.filter((r) => r.path.endsWith("/access_tokens")).length;
    await client.forRepository(hello, { checks: "write" });
    clock = T0 + 54 * MINUTE;
    await client.forRepository(hello, { checks: "write" });
    assert.equal(mints(), 1, "a token with six minutes left is reused");
    clock = T0 + 56 * MINUTE;
    const octokit = await client.forRepository(hello, { checks: "write" });
    assert.equal(mints(), 2, "a token with four minutes left is replaced");
    // The installation lookup is remembered for ten minutes, then asked again.
    assert.equal(standin.requests.filter((r) => r.path.endsWith("/installation")).length, 2);
    clock = T0 + 61 * MINUTE;
    assert.equal((await octokit.rest.checks.create({ ...hello, name: "t", head_sha: "b".repeat(40) })).status, 201);
  });

  it("keeps tokens for other permissions or repositories apart", async () => {
    const client = appClient();
    await client.forRepository(hello, { checks: "write" });
    await client.forRepository(hello, { contents: "read" });
    await client.forRepository({ owner: "octo", repo: "other" }, { checks: "write" });
    await client.forRepository(hello, { checks: "write" });
    assert.equal(standin.requests.filter((r) => r.path.endsWith("/access_tokens")).length, 3);
  });

  it("uses the installation id from the webhook without a lookup, and looks up once when it is stale", async () => {
    const client = appClient();
    await client.forRepository({ ...hello, installationId: 7 }, { checks: "write" });
    assert.deepEqual(standin.requests.map((r) => r.path), ["/app/installations/7/access_tokens"]);
    standin.requests.length = 0;
    await client.forRepository({ owner: "octo", repo: "other", installationId: 999 }, { checks: "write" });
    assert.deepEqual(
      standin.requests.map((r) => [r.path, r.status]),
      [
        ["/app/installations/999/access_tokens", 404],
        ["/repos/octo/other/installation", 200],
        ["/app/installations/7/access_tokens", 201],
      ],
    );
  });

  it("says so when the App is not installed on the repository", async () => {
    await assert.rejects(appClient().forRepository({ owner: "someone", repo: "else" }, { checks: "write" }), (error: unknown) => {
      assert.ok(error instanceof NotInstalledError);
      assert.match(error.message, /not installed on someone\/else/);
      return true;
    });
  });

  it("forgets an installation's tokens when told (installation deleted or suspended)", async () => {
    const client = appClient();
    await client.forRepository(hello, { checks: "write" });
    client.forget({ installationId: 7 });
    await client.forRepository(hello, { checks: "write" });
    assert.equal(standin.requests.filter((r) => r.path.endsWith("/access_tokens")).length, 2);
    assert.equal(standin.requests.filter((r) => r.path.endsWith("/installation")).length, 2);
  });

  it("a JWT signed with another key is refused by GitHub", async () => {
    const other = testAppKeys();
    const client = createGithubClient({ ...config, privateKey: other.privateKey }, { now });
    await assert.rejects(client.forRepository(hello, { checks: "write" }), { status: 401 });
    assert.deepEqual(standin.requests.at(-1)!.auth, { kind: "invalid", reason: "A JSON web token could not be decoded" });
  });
});

describe("clone credentials", () => {
  it("are installation tokens for one repository with contents:read, living at least 30 minutes", async () => {
    const client = appClient();
    const credential = await mintCloneCredential(client, hello);
    assert.ok(credential instanceof CloneCredential);
    assert.equal(credential.username, "x-access-token");
    assert.equal(credential.expiresAt.getTime(), T0 + 60 * MINUTE);
    assert.deepEqual(standin.requests.at(-1)!.body, { repositories: ["hello"], permissions: { contents: "read" } });
    const token = credential.reveal();
    assert.ok(standin.tokens.some((t) => t.token === token && t.repositories.join() === "octo/hello" && t.permissions.contents === "read" && !t.permissions.checks));
    // 35 minutes later the cached one still has 25 minutes: too little for a clone, so a new one.
    clock = T0 + 35 * MINUTE;
    const later = await mintCloneCredential(client, hello);
    assert.notEqual(later?.reveal(), token);
  });

  it("never show the token when logged or serialised", async () => {
    const credential = (await mintCloneCredential(appClient(), hello))!;
    const token = credential.reveal();
    for (const shown of [JSON.stringify(credential), JSON.stringify({ task: { credential } }), inspect(credential), String(credential), `${credential}`]) {
      assert.ok(!shown.includes(token), shown);
    }
    assert.match(JSON.stringify(credential), /"token":"\[redacted\]"/);
  });

  it("are not had in token mode: a personal token never leaves the service", async () => {
    const tokenConfig: GithubTokenConfig = { mode: "token", token: "ghp_personal", webhookSecret: "s", apiBaseUrl: standin.url, publicUrl: "https://n.example" };
    const client = createGithubClient(tokenConfig, { now });
    assert.equal(await mintCloneCredential(client, hello), undefined);
    await assert.rejects(client.installationToken(hello, { contents: "read" }), NoAppError);
  });
});

describe("repository permission (for fork approval)", () => {
  it("reads the collaborator permission with a metadata:read token", async () => {
    const client = appClient();
    assert.equal(await repositoryPermission(client, hello, "maintainer"), "write");
    assert.equal(await repositoryPermission(client, hello, "owner"), "admin");
    assert.equal(await repositoryPermission(client, hello, "triager"), "read");
    assert.equal(await repositoryPermission(client, hello, "stranger"), "none");
    const mint = standin.requests.find((r) => r.path.endsWith("/access_tokens"));
    assert.deepEqual(mint?.body, { repositories: ["hello"], permissions: { metadata: "read" } });
  });
});

describe("token client", () => {
  it("sends the personal token; check runs are refused to it, as GitHub does", async () => {
    const tokenConfig: GithubTokenConfig = { mode: "token", token: "ghp_personal", webhookSecret: "s", apiBaseUrl: standin.url, publicUrl: "https://n.example" };
    const octokit = await createGithubClient(tokenConfig).forRepository(hello, { statuses: "write" });
    const sha = "c".repeat(40);
    assert.equal((await octokit.rest.repos.createCommitStatus({ ...hello, sha, state: "pending", context: "nimbus/onPush" })).status, 201);
    assert.equal(standin.requests.at(-1)!.auth.kind, "personal-token");
    await assert.rejects(octokit.rest.checks.create({ ...hello, name: "x", head_sha: sha }), { status: 403 });
  });
});
