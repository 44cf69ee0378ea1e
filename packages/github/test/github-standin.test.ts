import assert from "node:assert/strict";
import { sign } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { GithubStandin, testAppKeys } from "../../../test/support/github-standin.ts";

/** The stand-in must refuse what GitHub refuses, or the client tests prove nothing. */
const keys = testAppKeys();
let clock = Date.parse("2025-01-01T10:00:00Z");
let standin: GithubStandin;
before(async () => {
  standin = await GithubStandin.start({
    appId: 1,
    appPublicKey: keys.publicKey,
    now: () => new Date(clock),
    installations: [{ id: 7, account: "octo", repositories: ["octo/hello"], permissions: { checks: "write" } }],
  });
});
after(() => standin.close());

function jwt(payload: Record<string, unknown>, header: Record<string, unknown> = { alg: "RS256", typ: "JWT" }, key = keys.privateKey): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const data = `${part(header)}.${part(payload)}`;
  return `${data}.${sign("RSA-SHA256", Buffer.from(data), key).toString("base64url")}`;
}
const seconds = () => Math.floor(Date.now() / 1000);
const call = (path: string, authorization: string, init: RequestInit = {}) =>
  fetch(`${standin.url}${path}`, { ...init, headers: { authorization, "content-type": "application/json" } });

describe("GitHub stand-in", () => {
  it("accepts a well-formed App JWT and refuses a bad one, as GitHub does", async () => {
    const good = jwt({ iss: 1, iat: seconds() - 30, exp: seconds() + 540 });
    assert.equal((await call("/repos/octo/hello/installation", `Bearer ${good}`)).status, 200);
    const refused = [
      jwt({ iss: 1, iat: seconds(), exp: seconds() + 1800 }), // expires too far ahead
      jwt({ iss: 1, iat: seconds() - 700, exp: seconds() - 60 }), // expired
      jwt({ iss: 2, iat: seconds(), exp: seconds() + 60 }), // another app
      jwt({ iss: 1, iat: seconds(), exp: seconds() + 60 }, { alg: "HS256", typ: "JWT" }),
      jwt({ iss: 1, iat: seconds(), exp: seconds() + 60 }, undefined, testAppKeys().privateKey),
    ];
    for (const token of refused) assert.equal((await call("/repos/octo/hello/installation", `Bearer ${token}`)).status, 401);
  });

  it("expires installation tokens after an hour by its clock, and enforces GitHub's limits on check runs", async () => {
    const app = `Bearer ${jwt({ iss: 1, iat: seconds() - 30, exp: seconds() + 540 })}`;
    const minted = await call("/app/installations/7/access_tokens", app, { method: "POST", body: JSON.stringify({ repositories: ["hello"] }) });
    assert.equal(minted.status, 201);
    const { token } = (await minted.json()) as { token: string };
    const tooLong = { name: "n", head_sha: "a".repeat(40), output: { title: "t", summary: "x".repeat(65_536) } };
    const answer = await call("/repos/octo/hello/check-runs", `token ${token}`, { method: "POST", body: JSON.stringify(tooLong) });
    assert.equal(answer.status, 422);
    assert.match(((await answer.json()) as { message: string }).message, /65535 characters/);
    clock += 3600_000;
    assert.equal((await call("/repos/octo/hello/check-runs", `token ${token}`, { method: "POST", body: "{}" })).status, 401);
  });
});
