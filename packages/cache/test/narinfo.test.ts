import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatNarinfo, parseNarinfo } from "../src/index.ts";

/** A narinfo as `nix copy --to file://…` wrote it (Nix 2.8). */
const FROM_NIX = `StorePath: /nix/store/qjaxdjz67863zaf5b0rizkdqnak4cqba-cx-top.drv
URL: nar/009130489afqj84nf5fyg4pdrcf39ds4hfjxmws8h93f2s0vbbiw.nar.xz
Compression: xz
FileHash: sha256:009130489afqj84nf5fyg4pdrcf39ds4hfjxmws8h93f2s0vbbiw
FileSize: 356
NarHash: sha256:01ms34mdm79vkyacnvp967733744avbdb9rhbrxl6p3xwxg0s1k2
NarSize: 504
References: s3hsdpmpsgpngc1ldy45gbgrv4qzblny-cx-dep.drv
Sig: test-1:5BhdsGnFRcQ0bCiBQ0Fvg3mLs5MZhOCgt+e6R1uvpUKAJzF8wnceCfEUKTYQsdsi8lFqLnqcIqaovAoYGbACCg==
CA: text:sha256:0lrwbh6i5y4kgqrw3avn7s88z2pj6rhjnjfy1ksxp6dnxn9nfhj1
`;

describe("narinfo", () => {
  it("parses what Nix writes and formats it back byte for byte", () => {
    const info = parseNarinfo(FROM_NIX);
    assert.equal(info.storePath, "/nix/store/qjaxdjz67863zaf5b0rizkdqnak4cqba-cx-top.drv");
    assert.deepEqual(info.references, ["/nix/store/s3hsdpmpsgpngc1ldy45gbgrv4qzblny-cx-dep.drv"]);
    assert.equal(info.narSize, 504);
    assert.equal(info.fileSize, 356);
    assert.equal(info.compression, "xz");
    assert.equal(info.deriver, undefined);
    assert.equal(info.sigs.length, 1);
    assert.equal(formatNarinfo(info), FROM_NIX);
  });

  it("keeps a Deriver, a System, several Sigs and an empty References line", () => {
    const text = [
      "StorePath: /nix/store/br50m32pvqdrcyh79p4w0s8sn29rjqaq-cx-top",
      "URL: nar/x.nar",
      "Compression: none",
      "NarHash: sha256:01ms34mdm79vkyacnvp967733744avbdb9rhbrxl6p3xwxg0s1k2",
      "NarSize: 168",
      "References: ",
      "Deriver: qjaxdjz67863zaf5b0rizkdqnak4cqba-cx-top.drv",
      "System: x86_64-linux",
      "Sig: a:AAAA",
      "Sig: b:BBBB",
      "",
    ].join("\n");
    const info = parseNarinfo(text);
    assert.deepEqual(info.references, []);
    assert.equal(info.deriver, "/nix/store/qjaxdjz67863zaf5b0rizkdqnak4cqba-cx-top.drv");
    assert.deepEqual(info.sigs, ["a:AAAA", "b:BBBB"]);
    assert.equal(formatNarinfo(info), text);
  });

  it("normalises NarHash to sha256:<base32> (what the fingerprint signs) and ignores unknown keys as Nix does", () => {
    const info = parseNarinfo(
      "StorePath: /nix/store/br50m32pvqdrcyh79p4w0s8sn29rjqaq-cx-top\nURL: nar/x\nNarHash: sha256-Bcw+hlbNNq4klg7tCJX0lt4xlfhsRMK0WXWx8wsogZo=\nNarSize: 1\nX-Cachix-Thing: 1\n",
    );
    assert.match(info.narHash, /^sha256:[0-9a-z]{52}$/);
    assert.equal(info.compression, "bzip2", "Nix's default when Compression is absent");
  });

  const BASE = "StorePath: /nix/store/br50m32pvqdrcyh79p4w0s8sn29rjqaq-cx-top\nURL: nar/x\nNarHash: sha256:01ms34mdm79vkyacnvp967733744avbdb9rhbrxl6p3xwxg0s1k2\nNarSize: 168\n";
  const bad: Array<[string, string, RegExp]> = [
    ["a path outside /nix/store", BASE.replace("/nix/store/br50", "/tmp/store/br50"), /StorePath must be a store path under \/nix\/store/],
    ["a store path with a bad hash", BASE.replace("br50m32pvqdrcyh79p4w0s8sn29rjqaq", "BR50"), /StorePath must be a store path/],
    ["a missing NarHash", BASE.replace(/NarHash.*\n/, ""), /missing NarHash/],
    ["a missing StorePath", BASE.replace(/StorePath.*\n/, ""), /missing StorePath/],
    ["a zero NarSize", BASE.replace("NarSize: 168", "NarSize: 0"), /NarSize must be/],
    ["a non-numeric NarSize", BASE.replace("NarSize: 168", "NarSize: 1e3"), /NarSize must be a whole number/],
    ["a repeated key", `${BASE}URL: nar/y\n`, /URL appears twice/],
    ["a reference with a slash", `${BASE}References: ../../etc/passwd\n`, /References must name a path in \/nix\/store/],
    ["a reference that is not a store path", `${BASE}References: hello\n`, /References must be a store path/],
    ["a bad NarHash", BASE.replace(/NarHash: .*/, "NarHash: md5:abc"), /NarHash must be a sha256 hash/],
    ["a line without a key", `${BASE}garbage\n`, /:5: expected "Key: value"/],
    ["a carriage return", BASE.replace("URL: nar/x", "URL: nar/x\r"), /URL contains a carriage return/],
    ["a Deriver outside the store", `${BASE}Deriver: /etc/x.drv\n`, /Deriver must name a path in \/nix\/store/],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses ${what}`, () => {
      assert.throws(() => parseNarinfo(text, "x.narinfo"), message);
    });
  }
});
