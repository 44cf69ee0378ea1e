import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sourceLabel } from "../src/format.ts";

describe("sourceLabel", () => {
  it("names an agent's store, a cache and a substituter as people read them", () => {
    assert.equal(sourceLabel("store:builder-1/3fa9c2d14b7e"), "agent builder-1's store (builder-1/3fa9c2d14b7e)");
    assert.equal(sourceLabel("cache:shared"), "cache shared");
    assert.equal(sourceLabel("substituter:https://cache.nixos.org"), "https://cache.nixos.org");
  });

  it("keeps a hostname with dots whole (the store id ends at its last slash)", () => {
    assert.equal(sourceLabel("store:ci.example.org/000000000000"), "agent ci.example.org's store (ci.example.org/000000000000)");
  });

  it("shows a source it does not know as it came", () => {
    assert.equal(sourceLabel("elsewhere"), "elsewhere");
  });
});
