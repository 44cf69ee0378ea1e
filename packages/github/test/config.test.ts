import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { DEFAULT_API_BASE_URL, GithubConfigError, githubConfigFrom } from "../src/config.ts";

const pem = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey;
const env = { NIMBUS_PUBLIC_URL: "https://nimbus.example.org/" };

describe("githubConfigFrom", () => {
  it("an App id selects App mode; the public URL loses its trailing slash", () => {
    const config = githubConfigFrom({ GithubAppId: "12345", GithubAppPrivateKey: pem, GithubWebhookSecret: "s" }, env);
    assert.deepEqual(config, { mode: "app", appId: 12345, privateKey: pem.trim(), webhookSecret: "s", apiBaseUrl: DEFAULT_API_BASE_URL, publicUrl: "https://nimbus.example.org" });
  });

  it("a key pasted on one line with \\n escapes works", () => {
    const config = githubConfigFrom({ GithubAppId: "1", GithubAppPrivateKey: pem.replace(/\n/g, "\\n"), GithubWebhookSecret: "s" }, env);
    assert.equal(config.mode === "app" && config.privateKey, pem.trim());
  });

  it("a token without an App selects token mode; NIMBUS_GITHUB_API_URL moves the API", () => {
    const config = githubConfigFrom({ GithubToken: "ghp_x", GithubWebhookSecret: "s" }, { ...env, NIMBUS_GITHUB_API_URL: "http://127.0.0.1:9999/" });
    assert.deepEqual(config, { mode: "token", token: "ghp_x", webhookSecret: "s", apiBaseUrl: "http://127.0.0.1:9999", publicUrl: "https://nimbus.example.org" });
  });

  it("neither: webhooks only, nothing reported; placeholders count as unset", () => {
    assert.deepEqual(githubConfigFrom({ GithubWebhookSecret: "s", GithubAppId: "none", GithubToken: " " }, {}), { mode: "off", webhookSecret: "s" });
  });

  it("the service's own URL stands in when NIMBUS_PUBLIC_URL is unset", () => {
    const config = githubConfigFrom({ GithubToken: "t", GithubWebhookSecret: "s" }, {}, "https://abc.execute-api.eu-west-1.amazonaws.com");
    assert.equal(config.mode === "token" && config.publicUrl, "https://abc.execute-api.eu-west-1.amazonaws.com");
  });

  const refused: Array<[string, Parameters<typeof githubConfigFrom>[0], Parameters<typeof githubConfigFrom>[1], RegExp]> = [
    ["missing key", { GithubAppId: "1", GithubWebhookSecret: "s" }, env, /GithubAppPrivateKey is not set/],
    ["a key that is not PEM", { GithubAppId: "1", GithubAppPrivateKey: "hunter2-not-a-key", GithubWebhookSecret: "s" }, env, /GithubAppPrivateKey: is not a PEM private key/],
    ["an App id that is not a number", { GithubAppId: "my-app", GithubAppPrivateKey: pem, GithubWebhookSecret: "s" }, env, /GithubAppId \(the App's numeric id\)/],
    ["no webhook secret", { GithubToken: "t" }, env, /GithubWebhookSecret is not set/],
    ["no public URL", { GithubToken: "t", GithubWebhookSecret: "s" }, {}, /NIMBUS_PUBLIC_URL is not set/],
    ["an API URL that is not http(s)", { GithubToken: "t", GithubWebhookSecret: "s" }, { ...env, NIMBUS_GITHUB_API_URL: "file:///etc" }, /NIMBUS_GITHUB_API_URL: an http\(s\) URL/],
  ];
  for (const [name, secrets, environment, message] of refused) {
    it(`refuses ${name} with a message that names the setting`, () => {
      assert.throws(() => githubConfigFrom(secrets, environment), (error: unknown) => {
        assert.ok(error instanceof GithubConfigError);
        assert.match(error.message, message);
        assert.match(error.message, /docs\/github\.md/);
        // A secret never appears in the message.
        assert.doesNotMatch(error.message, /hunter2|BEGIN RSA/);
        return true;
      });
    });
  }
});
