import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Timeline } from "../../deployer/timeline.ts";
import { readCredentials } from "../support/bmc-credentials.ts";
import { powerState as chassisPower } from "../support/chassis.ts";
import { buildTestImage, REPO, type TestImage } from "../support/images.ts";
import { firmwareBoots } from "../support/firmware-boots.ts";
import { CLEAN_ENV, machinesOf, oooIn, reportOf, prepareBridge, publishInto, wrongCredentials, writeMetalStack } from "../support/metal-stack.ts";
import { requireCommand, requireRoot } from "../support/require.ts";
import { createTestbed, type TestMachine, type Testbed } from "../support/testbed.ts";

/**
 * `driver: ironic`, end to end, on the bare-metal test bed: the stack's
 * embedded Ironic (Debian's) enrolls the machines with the `ipmi` hardware
 * type against their ipmi_sim BMCs, boots ooo's deploy ramdisk through
 * ooo's dnsmasq and boot files, and the ramdisk, as Ironic's agent, writes
 * the golden disk and ooo's config drive; Ironic boots the disk and the
 * node signals as on every driver. The inventory entries are the ipmi
 * driver's with `driver: ironic, url: embedded` (the same stack, only the
 * inventory changed). One test bed, one Ironic, in this order (the cheap
 * failures first, before any machine boots):
 *
 *   u1 UEFI, b1 BIOS — deployed; u1's node then upgraded in place; both undeployed
 *   s1 BIOS with a disk too small — the agent fails: Ironic's last_error and the agent's log
 *   x1 whose BMC refuses the stack's credentials — reported by enroll and deploy, never touched
 */
let bed: Testbed;
let stackFile: string;
let stateDir: string;
let kv: { v1: TestImage; v2: TestImage };
const machine = (name: string) => bed.machines.find((m) => m.name === name)!;
const ooo = (...args: string[]) => oooIn(bed.netns, args);
const figures: Record<string, unknown> = {};
let writeStack: (roles: Record<string, unknown>) => void;

/** Power events the chassis logged since `since` (ms). */
const powerEvents = (m: TestMachine, since = 0) => m.events().filter((e) => e.at >= since && /^(power-on|reset|power-off|soft-off)/.test(e.what)).map((e) => e.what);

/** Ironic's admin, inside the namespace with the stack's login (as a site's operator would). */
function ironicAdmin(args: string[]) {
  const [cmd, ...rest] = bed.netns.wrap(process.execPath, [join(REPO, "test/support/ironic-admin.ts"), stateDir, ...args]);
  const p = Bun.spawnSync([cmd!, ...rest], { env: CLEAN_ENV });
  if (p.exitCode !== 0) throw new Error(`ironic-admin ${args.join(" ")}: ${p.stderr.toString()}`);
  return JSON.parse(p.stdout.toString()) as { provision_state: string; power_state: string | null; maintenance: boolean; instance_uuid: string | null; last_error: string | null };
}
const ironicNode = (name: string) => ironicAdmin(["node", name]);
const maintenance = (name: string, reason: string | false) => ironicAdmin(["maintenance", name, ...(reason === false ? ["off"] : ["on", reason])]);


beforeAll(async () => {
  requireRoot();
  requireCommand("dnsmasq", "ipmitool", "ipmi_sim", "qemu-system-x86_64", "socat", "ironic", "ironic-dbsync", "genisoimage", "/usr/lib/ipxe/snponly.efi", "/usr/lib/ipxe/undionly.kpxe");
  const t0 = Date.now();
  const [ramdisk, v1, v2] = await Promise.all([buildTestImage("ramdisk"), buildTestImage("kv-v1"), buildTestImage("kv-v2")]);
  kv = { v1, v2 };
  bed = await createTestbed({
    machines: [
      { name: "u1", firmware: "uefi", memoryMiB: 1024 },
      { name: "b1", firmware: "bios", memoryMiB: 1024 },
      { name: "s1", firmware: "bios", memoryMiB: 1024, disksMiB: [1536] },
      { name: "x1", firmware: "bios", memoryMiB: 512 },
    ],
  });
  await prepareBridge(bed.netns);
  const dir = join(bed.dir, "stack");
  mkdirSync(dir);
  stackFile = join(dir, "metal.yaml");
  stateDir = join(dir, ".ooo", "metal");
  // The ipmi driver's entries, handed to Ironic: only `driver` and `url` differ.
  const ironic = (machines: Record<string, unknown>) => ({ driver: "ironic", url: "embedded", machines });
  const inventory = {
    rack: ironic(machinesOf(bed, [{ machine: machine("u1") }, { machine: machine("b1") }])),
    small: ironic(machinesOf(bed, [{ machine: machine("s1") }])),
    broken: ironic(machinesOf(bed, [{ machine: machine("x1"), credentials: wrongCredentials(dir) }])),
  };
  writeStack = (roles) => writeMetalStack(stackFile, { name: "metal", ramdisk: "ramdisk@stable", inventory, roles });
  writeStack({});
  await publishInto(bed.netns, stackFile, [
    { base: ramdisk.base, version: "1", tag: "stable", name: "ramdisk" },
    { base: v1.base, version: "1", tag: "live", name: "kv" },
    { base: v2.base, version: "2", name: "kv" },
  ]);
  figures.setup_seconds = (Date.now() - t0) / 1000;
}, 60 * 60_000);

afterAll(async () => {
  process.stderr.write(`Ironic under TCG: ${JSON.stringify(figures)}\n`);
  if (bed) {
    await ooo("delete", stackFile, "--purge").catch(() => {});
    await bed.destroy();
  }
  // Undeploying through Ironic and sweeping the test bed take more than bun's 5 s on a busy machine.
}, 180_000);

const role = (count: number, pool: string, extra: Record<string, unknown> = {}) => ({ count, image: "kv@live", inventory: pool, metadata: { redis: { port: 6379 } }, ...extra });

describe("driver: ironic, the embedded Ironic on the test bed's BMCs", () => {
  test("enroll: the embedded Ironic enrolls every machine, and reports the one whose BMC refuses the password, touching none", async () => {
    const t0 = Date.now();
    const r = await ooo("enroll", stackFile);
    figures.enroll_seconds = (Date.now() - t0) / 1000;
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("nothing was touched; a machine is not usable:");
    expect(r.stderr).toMatch(/- x1: the embedded Ironic could not verify its BMC: .*IPMI call failed: power status/);
    expect(r.stderr).not.toMatch(/- (u1|b1|s1):/);
    for (const name of ["u1", "b1", "s1"]) expect(ironicNode(name)).toMatchObject({ provision_state: "available", power_state: "power off", maintenance: false });
    expect((ironicNode("x1")).provision_state).toBe("enroll");
    for (const m of bed.machines) expect(powerEvents(m)).toEqual([]);
    expect(r.stderr + r.stdout).not.toContain("not-the-password");
  }, 10 * 60_000);

  test("deploy: a node in maintenance and a BMC that refuses the password are reported before anything is touched", async () => {
    maintenance("b1", "fan replaced, waiting for the vendor");
    writeStack({ web: role(1, "rack", { nodes: { "web-0": { machine: "b1" } } }), bad: role(1, "broken") });
    const t0 = Date.now();
    const r = await ooo("deploy", stackFile, "--json");
    figures.refused_seconds = (Date.now() - t0) / 1000;
    expect(r.code).not.toBe(0);
    const outcome = Object.fromEntries(reportOf<{ outcomes: { node: string; result: string; error?: string }[] }>(r).outcomes.map((o) => [o.node, o]));
    expect(outcome["web-0"]).toMatchObject({ result: "failed", error: expect.stringContaining("machine b1: Ironic node b1: it is in maintenance (fan replaced, waiting for the vendor)") });
    expect(outcome["bad-0"]).toMatchObject({ result: "failed", error: expect.stringMatching(/^machine x1: the embedded Ironic could not verify its BMC: .*IPMI call failed/) });
    for (const m of bed.machines) expect(powerEvents(m)).toEqual([]);
    expect(ironicNode("b1")).toMatchObject({ provision_state: "available", instance_uuid: null, maintenance: true });
    maintenance("b1", false);
  }, 10 * 60_000);

  test("deploy: a UEFI and a BIOS machine from power off to signalled through Ironic (two firmware boots each); an agent that fails shows Ironic's last_error and its log", async () => {
    writeStack({ web: role(2, "rack", { nodes: { "web-0": { machine: "b1" } } }), tiny: role(1, "small") });
    const t0 = Date.now();
    const r = await ooo("deploy", stackFile, "--json");
    figures.deploy_seconds = (Date.now() - t0) / 1000;
    const report = reportOf<{ outcomes: { node: string; result: string; error?: string }[]; timeline: Timeline }>(r);
    const outcome = Object.fromEntries(report.outcomes.map((o) => [o.node, o]));
    expect(r.code).not.toBe(0);
    for (const n of ["web-0", "web-1"]) expect({ node: n, result: outcome[n]!.result, error: outcome[n]!.error }).toEqual({ node: n, result: "active", error: undefined });
    expect(outcome["bad-0"]).toBeUndefined();

    // Ironic: PXE into the ramdisk, then the disk — two firmware boots, both by Ironic through the BMC.
    for (const m of ["u1", "b1"]) {
      expect(firmwareBoots(machine(m))).toBe(2);
      // (the agent powers the machine off itself: no BMC event; Ironic then reads it off)
      const events = powerEvents(machine(m), t0);
      expect([events[0], events.at(-1), events.filter((e) => e.startsWith("power-on")).length]).toEqual(["power-on boot=pxe", "power-on boot=disk", 2]);
      expect(ironicNode(m)).toMatchObject({ provision_state: "active", power_state: "power on" });
    }
    // s1's disk cannot hold the image: the agent failed; Ironic's reason and the agent's own log, s1 powered off.
    expect(outcome["tiny-0"]!.result).toBe("failed");
    expect(outcome["tiny-0"]!.error).toMatch(/Ironic's deploy of node s1 \(\S+\) ended "deploy failed": .*write_image.*no disk holds the image/s);
    expect(outcome["tiny-0"]!.error).toContain("the agent's log ends:");
    expect(outcome["tiny-0"]!.error).toMatch(/selecting-disk|no disk holds/);
    expect((ironicNode("s1")).provision_state).toBe("deploy failed");
    expect(chassisPower(machine("s1").dir)).toBe("off");

    // The timeline: the ramdisk's boot (Ironic powered it on), the agent's write, the node's boot from disk.
    const tl = Object.fromEntries(report.timeline.nodes.map((n) => [n.node, n]));
    for (const n of ["web-0", "web-1"]) {
      expect(tl[n]!.spans.map((s) => s.phase)).toEqual(expect.arrayContaining(["ramdisk boot", "image write", "boot", "configure"]));
      expect(tl[n]!.marks.map((m) => m.kind)).toEqual(expect.arrayContaining(["power-on", "lookup", "signalled"]));
      figures[`${n}_seconds`] = tl[n]!.seconds;
    }
    // No secret in the stack's logs (the BMC passwords went to Ironic only, over https).
    const bmc = readCredentials(bed.credentials);
    for (const f of ["metadata.log", "ironic/ironic.log", "provisioning/dnsmasq.log"].map((f) => join(stateDir, f)).filter(existsSync))
      expect(readFileSync(f, "latin1")).not.toContain(bmc.password);
  }, 60 * 60_000);

  test("an in-place upgrade of a node Ironic deployed: the node takes the new root over itself (kexec), Ironic not involved", async () => {
    const since = Date.now();
    const up = await ooo("takeover", stackFile, "web-1", "--image", "kv@2", "--json");
    if (up.code !== 0) throw new Error(`the upgrade failed:\n${up.stderr}`);
    const upgraded = reportOf<{ nodes: { node: string; result: string; restart?: string; to: string; seconds: number }[] }>(up);
    expect(upgraded.nodes[0]).toMatchObject({ node: "web-1", result: "upgraded", restart: "kexec", to: kv.v2.manifest.digest });
    figures.upgrade_seconds = upgraded.nodes[0]!.seconds;
    expect(powerEvents(machine("u1"), since)).toEqual([]);
    expect(ironicNode("u1")).toMatchObject({ provision_state: "active", power_state: "power on" });
  }, 30 * 60_000);

  test("undeploy: removing the nodes returns every machine to available, powered off, its claim gone", async () => {
    writeStack({ web: role(0, "rack"), tiny: role(0, "small") });
    const t0 = Date.now();
    const r = await ooo("deploy", stackFile);
    figures.undeploy_seconds = (Date.now() - t0) / 1000;
    if (r.code !== 0) throw new Error(`the undeploy failed:\n${r.stderr}`);
    for (const m of ["u1", "b1", "s1"]) expect(ironicNode(m)).toMatchObject({ provision_state: "available", power_state: "power off", instance_uuid: null });
    expect(existsSync(join(stateDir, "nodes"))).toBe(true);
    const del = await ooo("delete", stackFile);
    expect(del.code).toBe(0);
    expect(del.stderr).toContain("embedded Ironic");
  }, 20 * 60_000);
});
