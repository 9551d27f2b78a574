import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { capture } from "../../lib/run.ts";
import type { Timeline } from "../../deployer/timeline.ts";
import { diskSerial, powerState as chassisPower } from "../support/chassis.ts";
import { buildTestImage, type TestImage } from "../support/images.ts";
import { machinesOf, oooIn, reportOf, prepareBridge, publishInto, wrongCredentials, writeMetalStack } from "../support/metal-stack.ts";
import { firmwareBoots } from "../support/firmware-boots.ts";
import { requireCommand, requireRoot } from "../support/require.ts";
import { createTestbed, type TestMachine, type Testbed } from "../support/testbed.ts";

/**
 * Bare metal, end to end, on the test bed: qemu machines powered only
 * through their BMCs (ipmi_sim, and the Redfish front), network-booted by
 * the deployer's own dnsmasq and boot files into the deploy ramdisk built
 * from elements, which writes the golden disk and kexecs into it. `ooo`
 * runs inside the test bed's namespace, as on a host of the provisioning
 * network. One test bed, one ramdisk build and one stack for all:
 *
 *   u1 UEFI, u2 UEFI with two disks and a root device hint, b1 BIOS  — ipmi, from power off
 *   r1 BIOS — redfish · f1 BIOS — waits in standby (fast track)
 *   s1 BIOS with a disk too small · x1 whose BMC refuses the stack's credentials
 *
 * enroll (x1 refused before anything is touched; f1 into standby), one
 * deploy of everything (x1's node fails untouched, s1's at selecting-disk
 * with the ramdisk's log and s1 powered off, the others signal: one
 * firmware boot each cold, none for f1), an in-place upgrade (kexec) and a
 * rollback, then two nodes removed (erased; f1 back to standby, s1 off).
 */
let bed: Testbed;
let stackFile: string;
let enrollFile: string;
/** The enrolled stack with no nodes. */
let emptyFile: string;
let stateDir: string;
let kv: { v1: TestImage; v2: TestImage; v3: TestImage };
const machine = (name: string) => bed.machines.find((m) => m.name === name)!;
const ooo = (...args: string[]) => oooIn(bed.netns, args);
const figures: Record<string, unknown> = {};

function db<T>(fn: (d: Database) => T): T {
  const d = new Database(join(stateDir, "state.db"), { readonly: true });
  try {
    return fn(d);
  } finally {
    d.close();
  }
}
const machineRow = (name: string) => db((d) => d.query<{ state: string; node: string | null; phase: string | null; inventory: string | null }, [string]>("SELECT * FROM machines WHERE name = ?").get(name));
const nodeEvents = (node: string) =>
  db((d) => d.query<{ kind: string; at: number; detail: string | null }, [string]>("SELECT kind, at, detail FROM events WHERE node = ? ORDER BY at, id").all(node)).map((e) => ({ ...e, detail: e.detail ? (JSON.parse(e.detail) as Record<string, unknown>) : {} }));
/** Power events the chassis logged since `since` (ms): power-on, reset, power-off. */
const powerEvents = (m: TestMachine, since = 0) => m.events().filter((e) => e.at >= since && /^(power-on|reset|power-off|soft-off)/.test(e.what)).map((e) => e.what);

beforeAll(async () => {
  requireRoot();
  requireCommand("dnsmasq", "ipmitool", "ipmi_sim", "qemu-system-x86_64", "socat", "sfdisk", "/usr/lib/ipxe/snponly.efi", "/usr/lib/ipxe/undionly.kpxe");
  const [ramdisk, v1, v2, v3] = await Promise.all([buildTestImage("ramdisk"), buildTestImage("kv-v1"), buildTestImage("kv-v2"), buildTestImage("kv-v3")]);
  kv = { v1, v2, v3 };
  bed = await createTestbed({
    machines: [
      { name: "u1", firmware: "uefi", memoryMiB: 1024 },
      { name: "u2", firmware: "uefi", memoryMiB: 1024, disksMiB: [4096, 6144] },
      { name: "b1", firmware: "bios", memoryMiB: 1024 },
      { name: "r1", firmware: "bios", memoryMiB: 1024 },
      { name: "f1", firmware: "bios", memoryMiB: 1024 },
      { name: "s1", firmware: "bios", memoryMiB: 1024, disksMiB: [1536] },
      { name: "x1", firmware: "bios", memoryMiB: 512 },
    ],
    redfish: true,
  });
  await prepareBridge(bed.netns);
  const dir = join(bed.dir, "stack");
  mkdirSync(dir);
  stackFile = join(dir, "metal.yaml");
  enrollFile = join(dir, "metal-enroll.yaml");
  stateDir = join(dir, ".ooo", "metal");
  const inventory = {
    // u2's hint names its bigger disk: without it the smaller one (the default choice) would be written.
    rack: { driver: "ipmi", machines: machinesOf(bed, [{ machine: machine("u1") }, { machine: machine("u2"), root_device: { serial: diskSerial("u2", 1) } }, { machine: machine("b1") }]) },
    rf: { driver: "redfish", machines: machinesOf(bed, [{ machine: machine("r1"), via: "redfish" }]) },
    fast: { driver: "ipmi", standby: true, machines: machinesOf(bed, [{ machine: machine("f1") }]) },
    small: { driver: "ipmi", machines: machinesOf(bed, [{ machine: machine("s1") }]) },
    broken: { driver: "ipmi", machines: machinesOf(bed, [{ machine: machine("x1"), credentials: wrongCredentials(dir) }]) },
  };
  const role = (count: number, pool: string) => ({ count, image: "kv@live", inventory: pool, metadata: { redis: { port: 6379 } } });
  const roles = { web: role(3, "rack"), api: role(1, "rf"), quick: role(1, "fast"), tiny: role(1, "small"), bad: role(1, "broken") };
  writeMetalStack(stackFile, { name: "metal", ramdisk: "ramdisk@stable", inventory, roles });
  const { broken: _b, ...enrollable } = inventory;
  const { bad: _r, ...enrollRoles } = roles;
  writeMetalStack(enrollFile, { name: "metal", ramdisk: "ramdisk@stable", inventory: enrollable, roles: enrollRoles });
  emptyFile = join(dir, "metal-empty.yaml");
  writeMetalStack(emptyFile, { name: "metal", ramdisk: "ramdisk@stable", inventory: enrollable, roles: Object.fromEntries(Object.entries(enrollRoles).map(([k, v]) => [k, { ...v, count: 0 }])) });
  await publishInto(bed.netns, stackFile, [
    { base: ramdisk.base, version: "1", tag: "stable", name: "ramdisk" },
    { base: v1.base, version: "1", tag: "live", name: "kv" },
    { base: v2.base, version: "2", name: "kv" },
    { base: v3.base, version: "3", name: "kv" },
  ]);
}, 60 * 60_000);

afterAll(async () => {
  process.stderr.write(`bare metal under TCG: ${JSON.stringify(figures)}\n`);
  await bed?.destroy();
}, 120_000);

describe("bare metal through the test bed's BMCs", () => {
  test("enroll: a BMC that refuses the credentials is reported with nothing touched or recorded", async () => {
    const r = await ooo("enroll", stackFile);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("nothing was touched; a machine is not usable:");
    expect(r.stderr).toMatch(/- x1: BMC ipmi:\/\/127\.0\.0\.\d+:\d+: ipmitool power status: .*(RAKP|session)/);
    expect(r.stderr).toContain("wrong-bmc.yaml");
    expect(r.stderr).not.toMatch(/- (u1|u2|b1|r1|f1|s1):/);
    for (const m of bed.machines) expect(powerEvents(m)).toEqual([]);
    expect(existsSync(join(stateDir, "state.db")) ? db((d) => d.query("SELECT * FROM machines").all()) : []).toEqual([]);
    // The password is nowhere in what ooo printed.
    expect(r.stderr + r.stdout).not.toContain("not-the-password");
  }, 120_000);

  test("enroll --standby: f1 boots into the ramdisk and waits there, its hardware in ooo status", async () => {
    const t0 = Date.now();
    const r = await ooo("enroll", enrollFile);
    if (r.code !== 0) throw new Error(`enroll failed:\n${r.stderr}`);
    figures.standby_seconds = (Date.now() - t0) / 1000;
    expect(powerEvents(machine("f1"))).toEqual(["power-on boot=pxe"]);
    for (const m of ["u1", "u2", "b1", "r1", "s1", "x1"]) expect(powerEvents(machine(m))).toEqual([]);
    const status = JSON.parse((await ooo("status", stackFile, "--json")).stdout) as { machines: { machine: string; state: string; phase?: string; inventory?: { disks: { name: string; size: number; serial?: string }[] } }[] };
    const f1 = status.machines.find((m) => m.machine === "f1")!;
    expect(f1).toMatchObject({ state: "ramdisk", phase: "waiting" });
    expect(f1.inventory!.disks).toEqual([expect.objectContaining({ name: "vda", size: 4096 * 2 ** 20, serial: diskSerial("f1", 0) })]);
    expect(status.machines.filter((m) => m.state === "off").map((m) => m.machine).sort()).toEqual(["b1", "r1", "s1", "u1", "u2"]);
    // A deploy that leaves the stack without nodes keeps the metadata service: f1's ramdisk polls it for its next command.
    const none = await ooo("deploy", emptyFile);
    expect(none.code).toBe(0);
    expect(none.stderr).not.toContain("the metadata service stopped");
    expect(existsSync(join(stateDir, "metadata.pid"))).toBe(true);
  }, 20 * 60_000);

  test("deploy: 3 machines by ipmi (2 UEFI, 1 BIOS, one by a root device hint), 1 by redfish, 1 fast-track; a bad BMC and a small disk fail alone", async () => {
    const t0 = Date.now();
    const r = await ooo("deploy", stackFile, "--json");
    figures.deploy_seconds = (Date.now() - t0) / 1000;
    const report = reportOf<{ outcomes: { node: string; result: string; error?: string }[]; timeline: Timeline }>(r);
    const outcome = Object.fromEntries(report.outcomes.map((o) => [o.node, o]));
    expect(r.code).not.toBe(0);
    for (const n of ["web-0", "web-1", "web-2", "api-0", "quick-0"]) expect({ node: n, result: outcome[n]!.result, error: outcome[n]!.error }).toEqual({ node: n, result: "active", error: undefined });

    // x1's BMC refused the login: its node failed before anything, x1 never touched.
    expect(outcome["bad-0"]!.result).toBe("failed");
    expect(outcome["bad-0"]!.error).toMatch(/^machine x1: BMC ipmi:\/\/127\.0\.0\.\d+:\d+: ipmitool power status: /);
    expect(powerEvents(machine("x1"))).toEqual([]);
    // s1's disk cannot hold the image: failed at the ramdisk's step, with its log, and powered off.
    expect(outcome["tiny-0"]!.result).toBe("failed");
    expect(outcome["tiny-0"]!.error).toStartWith("the deploy ramdisk failed at selecting-disk: no disk holds the image");
    expect(outcome["tiny-0"]!.error).toContain("the ramdisk's log ends:");
    expect(outcome["tiny-0"]!.error).toContain("ooo-deploy");
    expect(powerEvents(machine("s1"))).toEqual(["power-on boot=pxe", "power-off"]);

    // Cold machines: one firmware boot each (the node was started by kexec); f1 none at all.
    for (const m of ["u1", "u2", "b1", "r1"]) {
      expect(powerEvents(machine(m))).toEqual(["power-on boot=pxe"]);
      expect(firmwareBoots(machine(m))).toBe(1);
    }
    expect(powerEvents(machine("f1"), t0)).toEqual([]);
    expect(firmwareBoots(machine("f1"))).toBe(1); // the one of its enroll

    // u2's hint chose its second disk; the first was not written.
    const result = nodeEvents("web-1").find((e) => e.kind === "ramdisk-result")!;
    expect(result.detail).toMatchObject({ status: "success", restart: "kexec", disk: "/dev/vdb" });
    expect(firstMiBZero(join(machine("u2").dir, "disk0.raw"))).toBe(true);
    const parts = JSON.parse(await capture("sfdisk", ["-J", join(machine("u2").dir, "disk1.raw")])).partitiontable.partitions as { name: string }[];
    expect(parts.at(-1)!.name).toBe("config-2");

    // The timeline: the ramdisk's boot, its write and the kexec for a cold machine; the fast track for f1.
    const tl = Object.fromEntries(report.timeline.nodes.map((n) => [n.node, n]));
    expect(tl["web-0"]!.spans.map((s) => s.phase)).toEqual(expect.arrayContaining(["ramdisk boot", "image write", "boot", "configure"]));
    expect(tl["web-0"]!.marks.map((m) => m.kind)).toEqual(expect.arrayContaining(["power-on", "lookup", "kexec", "signalled"]));
    expect(tl["quick-0"]!.marks.map((m) => m.kind)).toContain("fast track");
    expect(tl["quick-0"]!.spans.map((s) => s.phase)).not.toContain("ramdisk boot");
    for (const n of ["web-0", "web-2", "api-0", "quick-0"]) figures[`${n}_seconds`] = tl[n]!.seconds;

    // Machines as ooo status shows them now.
    expect(machineRow("f1")).toMatchObject({ state: "node", node: "quick-0" });
    expect(machineRow("s1")).toMatchObject({ state: "off" });
    // No secret in the stack's logs.
    for (const f of logFiles(stateDir)) expect(readFileSync(f, "latin1")).not.toMatch(/not-the-password/);
  }, 60 * 60_000);

  test("in-place upgrade on a UEFI machine (kexec) and a rollback", async () => {
    const up = await ooo("takeover", stackFile, "web-0", "--image", "kv@2", "--json");
    if (up.code !== 0) throw new Error(`the upgrade failed:\n${up.stderr}`);
    const upgraded = reportOf<{ nodes: { node: string; result: string; restart?: string; to: string }[] }>(up);
    expect(upgraded.nodes[0]).toMatchObject({ node: "web-0", result: "upgraded", restart: "kexec", to: kv.v2.manifest.digest });
    expect(powerEvents(machine("u1"))).toEqual(["power-on boot=pxe"]);

    // The rollback boots the old root through the firmware and the disk's GRUB: under UEFI that needs the
    // golden disk's EFI system partition; until the image has one, it is shown on the BIOS machine.
    const rollback = (await uefiBootable(kv.v3)) ? "web-0" : "web-2";
    const down = await ooo("takeover", stackFile, rollback, "--image", "kv@3", "--json");
    expect(down.code).not.toBe(0);
    const rolled = reportOf<{ nodes: { node: string; result: string; reason?: string }[] }>(down);
    expect(rolled.nodes[0]).toMatchObject({ node: rollback, result: "rolled-back" });
    expect(rolled.nodes[0]!.reason).toContain("configure.d/70-broken-configure");
    const status = JSON.parse((await ooo("status", stackFile, "--json")).stdout) as { nodes: { node: string; digest?: string; state: string }[] };
    expect(status.nodes.find((n) => n.node === rollback)!.digest).toBe(rollback === "web-0" ? kv.v2.manifest.digest : kv.v1.manifest.digest);
  }, 40 * 60_000);

  test("removing nodes erases their disks through the ramdisk: f1 back to standby, s1 off", async () => {
    const since = Date.now();
    const r = await ooo("scale", stackFile, "quick=0", "tiny=0");
    // bad-0 still fails (its BMC), the rest is unchanged.
    expect(r.stderr).toContain("bad-0");
    expect(machineRow("f1")).toMatchObject({ state: "ramdisk", node: null, phase: "waiting" });
    expect(machineRow("s1")).toMatchObject({ state: "off", node: null });
    for (const m of ["f1", "s1"]) {
      expect(powerEvents(machine(m), since)[0]).toMatch(/^(reset|power-on) boot=pxe$/);
      expect(firstMiBZero(join(machine(m).dir, "disk0.raw"))).toBe(true);
    }
    // s1's ramdisk powered it off itself after the erase (the chassis logs only what its BMC was told): off, as its BMC says.
    expect(chassisPower(machine("s1").dir)).toBe("off");
    expect(powerEvents(machine("f1"), since)).toHaveLength(1);
  }, 30 * 60_000);
});

/** Whether a disk's first MiB holds nothing (no partition table). */
function firstMiBZero(file: string): boolean {
  const buf = Buffer.alloc(2 ** 20);
  const fd = openSync(file, "r");
  try {
    readSync(fd, buf, 0, buf.length, 0);
  } finally {
    closeSync(fd);
  }
  return buf.every((b) => b === 0);
}

/** The golden disk has an EFI system partition (it then boots under UEFI through the firmware). */
async function uefiBootable(image: TestImage): Promise<boolean> {
  const raw = `${image.base}.raw`;
  const file = existsSync(raw) ? raw : `${kv.v1.base}.raw`;
  const parts = JSON.parse(await capture("sfdisk", ["-J", file])).partitiontable.partitions as { type: string }[];
  return parts.some((p) => p.type.toUpperCase() === "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
}

function logFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile() && e.name.endsWith(".log")) out.push(join(e.parentPath, e.name));
  return out;
}


