import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { bucketOf, bucketRange, inRange, NIX_BASE32, prefixAt, storeHash } from "../src/list/hash-ranges.ts";

const randomHash = () => Array.from(randomBytes(32), (b) => NIX_BASE32[b % 32]).join("");

describe("hash ranges", () => {
  it("uses Nix's base32 alphabet in byte order, as DynamoDB sorts keys", () => {
    assert.equal(NIX_BASE32.length, 32);
    assert.deepEqual([...NIX_BASE32].sort(), [...NIX_BASE32]);
    for (const letter of "eotu") assert.ok(!NIX_BASE32.includes(letter));
  });

  it("maps fractions of the hash space to prefixes in order", () => {
    assert.equal(prefixAt(0), "0000");
    assert.equal(prefixAt(0.5), "h000"); // the 17th of 32 digits
    assert.equal(prefixAt(0.999999999), "zzzz");
    const prefixes = Array.from({ length: 1000 }, (_, i) => prefixAt(i / 1000));
    assert.deepEqual([...prefixes].sort(), prefixes);
    assert.equal(new Set(prefixes).size, 1000);
  });

  it("splits the space into buckets that cover every hash exactly once", () => {
    const count = 37;
    for (let i = 0; i < 2000; i++) {
      const hash = randomHash();
      const holding = Array.from({ length: count }, (_, b) => b).filter((b) => inRange(hash, bucketRange(b, count)));
      assert.deepEqual(holding, [bucketOf(hash, count)], hash);
    }
    assert.deepEqual(bucketRange(0, 1), {});
    assert.deepEqual(bucketRange(0, 2), { to: "h000" });
    assert.deepEqual(bucketRange(1, 2), { from: "h000" });
  });

  it("treats `to` as exclusive and `from` as inclusive for whole hashes under those prefixes", () => {
    assert.ok(inRange("g000abc", { from: "g000" }));
    assert.ok(!inRange("g000abc", { to: "g000" }));
    assert.ok(inRange("fzzzzzz", { to: "g000" }));
  });

  it("spreads uniform hashes evenly: buckets of 100 hold 100 ± a few dozen", () => {
    const total = 20_000;
    const count = total / 100;
    const sizes = new Array<number>(count).fill(0);
    for (let i = 0; i < total; i++) sizes[bucketOf(randomHash(), count)]!++;
    assert.ok(Math.max(...sizes) < 160 && Math.min(...sizes) > 50, `${Math.min(...sizes)}..${Math.max(...sizes)}`);
  });

  it("reads the hash of a store path", () => {
    assert.equal(storeHash("/nix/store/0c3sdvjw5y4l2n8zcq5jq3cyqz1lrd7a-hello-2.12.drv"), "0c3sdvjw5y4l2n8zcq5jq3cyqz1lrd7a");
  });
});
