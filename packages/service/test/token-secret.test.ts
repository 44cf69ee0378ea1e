import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bearerToken, generateToken, hashMatches, hashSecret, parseToken, secretsEqual } from "../src/platform/token-secret.ts";

describe("token secrets", () => {
  it("generates tokens that parse back to their id and secret", () => {
    const { id, secret, token } = generateToken();
    assert.deepEqual(parseToken(token), { id, secret });
    assert.notEqual(generateToken().token, token);
  });

  it("refuses anything not shaped like a token", () => {
    const { token } = generateToken();
    for (const bad of ["", "nimbus1", token.slice(0, -1), token.replace("nimbus1", "nimbus2"), `${token}x`, "a.b.c"]) {
      assert.equal(parseToken(bad), undefined, bad);
    }
  });

  it("stores only a hash and matches it in constant time", () => {
    const { secret } = generateToken();
    const stored = hashSecret(secret);
    assert.doesNotMatch(stored, new RegExp(secret));
    assert.equal(hashMatches(secret, stored), true);
    assert.equal(hashMatches(`${secret}x`, stored), false);
    assert.equal(hashMatches(secret, "00"), false);
  });

  it("compares secrets of any length", () => {
    assert.equal(secretsEqual("abc", "abc"), true);
    assert.equal(secretsEqual("abc", "abcd"), false);
  });

  it("reads bearer tokens from any header case", () => {
    assert.equal(bearerToken({ Authorization: "Bearer t1" }), "t1");
    assert.equal(bearerToken({ authorization: "bearer t2" }), "t2");
    assert.equal(bearerToken({ authorization: "Basic dTpw" }), undefined);
    assert.equal(bearerToken({}), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });
});
