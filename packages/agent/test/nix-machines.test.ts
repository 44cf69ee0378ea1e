import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { buildAgentInfo } from "../src/agent-info.ts";
import { parseAgentConfig } from "../src/config.ts";
import { machinesFiles, parseMachines, readMachines } from "../src/nix-machines.ts";

// Nix's `builders` and machines files, as Nix 2.8 reads them (docs/agent.md, "Remote builders").
describe("remote builders", () => {
  it("reads each machine's systems and features, mandatory ones supported too", () => {
    const machines = parseMachines(
      [
        "# the GPU box",
        "ssh-ng://builder@gpu aarch64-linux,x86_64-linux /k 4 2 big-parallel gpu",
        "ssh://kvm - - - - kvm,nixos-test kvm ; ssh://plain",
        "",
      ].join("\n"),
      "x86_64-linux",
    );
    assert.deepEqual(
      machines.map((m) => [m.uri, m.systems, m.supportedFeatures, m.mandatoryFeatures, m.maxJobs]),
      [
        ["ssh-ng://builder@gpu", ["aarch64-linux", "x86_64-linux"], ["big-parallel", "gpu"], ["gpu"], 4],
        ["ssh://kvm", ["x86_64-linux"], ["kvm", "nixos-test"], ["kvm"], 1],
        ["ssh://plain", ["x86_64-linux"], [], [], 1],
      ],
    );
  });

  it("reads machines files named with @, and leaves out machines that take no jobs", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "nimbus-machines-"));
    try {
      const file = path.join(dir, "machines");
      await writeFile(file, "ssh://a x86_64-linux - 0\nssh://b i686-linux - 2 1 - benchmark\n");
      assert.deepEqual(machinesFiles(`@${file}; ssh://c`), [file]);
      const machines = await readMachines(`@${file}; ssh://c`, "x86_64-linux");
      assert.deepEqual(machines.map((m) => m.uri), ["ssh://c", "ssh://b"]);
      assert.deepEqual(machines[1]!.mandatoryFeatures, ["benchmark"]);
      assert.deepEqual(await readMachines(`@${path.join(dir, "missing")}`, "x86_64-linux"), [], "a missing file is no machine, as in Nix");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("reports each machine on its own in AgentInfo, without its address", () => {
    const config = parseAgentConfig(`apiBaseUrl = "http://127.0.0.1:4800"\nclusterJoinTokenPath = "t"`, "/etc/nimbus");
    const remoteMachines = parseMachines("ssh://secret-host.internal x86_64-linux - 1 1 gpu gpu", "x86_64-linux");
    const info = buildAgentInfo(config, { nixVersion: "2.8.0", systems: ["x86_64-linux"], systemFeatures: [], substituters: [], remoteMachines }, "h");
    assert.deepEqual(info.remoteBuilders, [{ systems: ["x86_64-linux"], supportedFeatures: ["gpu"], mandatoryFeatures: ["gpu"] }]);
    assert.ok(!JSON.stringify(info).includes("secret-host"));
  });
});
