import { afterAll, beforeAll, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { writeCredentials } from "../support/bmc-credentials.ts";
import { ipmitool } from "../support/bmc-ipmi.ts";
import { dhcpProbe, startDnsmasq, type Dnsmasq } from "../support/dnsmasq.ts";
import { KERNEL_FIRST_LINE, MARKER, markerPayload } from "../support/marker-ramdisk.ts";
import { startNetboot, type NetbootServer } from "../support/netboot.ts";
import { requireCommand, requireRoot } from "../support/require.ts";
import { createTestbed, type TestMachine, type Testbed } from "../support/testbed.ts";

/**
 * The bare-metal test bed, proved: two machines (UEFI with OVMF's own PXE,
 * BIOS with qemu's iPXE ROM) that only their BMCs power, network-booted by
 * dnsmasq and an HTTP server on the namespace's bridge into a Debian kernel
 * and a marker initramfs that reports its MAC and lease. Then the same
 * through the Redfish front with sushy, and the refusals: an unknown MAC
 * gets no lease, a wrong BMC password no session.
 */
const PYTHON = "/usr/bin/python3"; // Debian's, with python3-sushy (not a pyenv one on PATH)
const SUSHY_CLIENT = resolve(import.meta.dir, "../support/sushy-client.py");

let bed: Testbed;
let dnsmasq: Dnsmasq;
let boot: NetbootServer;
const timings: Record<string, number> = {};

beforeAll(async () => {
  requireRoot();
  requireCommand("dnsmasq", "ipmitool", "ipmi_sim", "qemu-system-x86_64", "socat", "/usr/lib/ipxe/snponly.efi", "/bin/busybox", PYTHON);
  if (Bun.spawnSync([PYTHON, "-c", "import sushy"]).exitCode !== 0) throw new Error("this test needs python3-sushy; install it with: sh tools/ensure.sh");
  const payload = await markerPayload();
  bed = await createTestbed({ machines: [{ name: "uefi0", firmware: "uefi" }, { name: "bios0", firmware: "bios" }], redfish: true });
  boot = await startNetboot(bed.netns, { dir: bed.dir, payload });
  dnsmasq = await startDnsmasq(bed.netns, {
    dir: bed.dir,
    interface: bed.netns.bridge,
    address: bed.netns.address,
    hosts: bed.machines.map((m) => ({ mac: m.mac, ip: m.ip, name: m.name })),
    tftpRoot: boot.tftpRoot,
    ipxeScriptUrl: `${boot.url}/boot.ipxe`,
  });
}, 120_000);

afterAll(async () => {
  console.log(`testbed timings (s): ${JSON.stringify(timings)}`);
  await dnsmasq?.stop();
  await boot?.stop();
  await bed?.destroy();
});

const ipmi = (m: TestMachine, ...args: string[]) => ipmitool(m.ipmi, bed.credentials, args);

/** Not spawnSync: the Redfish server answering sushy runs in this process's event loop. */
async function sushy(m: TestMachine, credentials: string, ...actions: string[]) {
  const p = Bun.spawn([PYTHON, SUSHY_CLIENT, bed.redfish!.url, m.systemId, credentials, ...actions], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (!out.trim()) throw new Error(`sushy-client failed (exit ${code}): ${err}`);
  return { code, result: JSON.parse(out) };
}

/** Boot one machine over the network through its BMC and time it from the power-on. */
async function netboot(m: TestMachine, next: "wait" | "poweroff", powerOn: () => Promise<void>) {
  boot.setNext(m.mac, next);
  const from = m.console().length;
  const t0 = Date.now();
  await powerOn();
  const kernel = await m.waitConsole(KERNEL_FIRST_LINE, 180_000, from);
  const init = await m.waitConsole(new RegExp(MARKER.init), 60_000, kernel.end);
  const net = await m.waitConsole(new RegExp(`${MARKER.net} mac=(\\S+) ip=(\\S*) disks=(\\S*)`), 60_000, init.end);
  await m.waitConsole(new RegExp(`${MARKER.done} next=${next}`), 30_000, net.end);
  const firmware = m.console().slice(from, kernel.end);
  return { kernel: (kernel.at - t0) / 1000, init: (init.at - t0) / 1000, mac: net.match[1], ip: net.match[2], disks: net.match[3], firmware };
}

test("two machines netboot through their IPMI BMCs: UEFI by OVMF's PXE and snponly.efi, BIOS by iPXE", async () => {
  const [uefi, bios] = bed.machines as [TestMachine, TestMachine];
  for (const m of bed.machines) {
    expect((await ipmi(m, "power", "status")).stdout).toBe("Chassis Power is off");
    expect(await ipmi(m, "chassis", "bootdev", "pxe", ...(m.firmware === "uefi" ? ["options=efiboot"] : []))).toMatchObject({ code: 0 });
    expect((await ipmi(m, "chassis", "bootparam", "get", "5")).stdout).toContain("Boot Device Selector : Force PXE");
  }
  // The UEFI ramdisk stays up until its BMC powers it off; the BIOS one powers itself off.
  const [u, b] = await Promise.all([
    netboot(uefi, "wait", async () => void expect(await ipmi(uefi, "power", "on")).toMatchObject({ code: 0 })),
    netboot(bios, "poweroff", async () => void expect(await ipmi(bios, "power", "on")).toMatchObject({ code: 0 })),
  ]);
  Object.assign(timings, { uefi_pxe_kernel: u.kernel, uefi_pxe_init: u.init, bios_ipxe_kernel: b.kernel, bios_ipxe_init: b.init });
  // Each ramdisk got its own lease from dnsmasq and reported it over HTTP to the bridge.
  for (const [m, r] of [[uefi, u], [bios, b]] as const) {
    expect(r).toMatchObject({ mac: m.mac, ip: m.ip, disks: "vda," });
    expect(boot.reports.find((x) => x.mac === m.mac)).toMatchObject({ ip: m.ip });
  }
  // Who fetched what: OVMF's PXE took snponly.efi by TFTP, the BIOS machine's iPXE went straight to HTTP.
  expect(dnsmasq.logText()).toMatch(/sent \S+\/snponly\.efi to 10\.77\.0\.10/);
  expect(dnsmasq.logText()).not.toMatch(/to 10\.77\.0\.11/);
  expect(boot.requests.filter((r) => r.path === "/boot.ipxe")).toHaveLength(2);

  expect((await ipmi(uefi, "power", "status")).stdout).toBe("Chassis Power is on");
  expect(await ipmi(uefi, "power", "off")).toMatchObject({ code: 0 });
  for (const m of bed.machines) expect((await ipmi(m, "power", "status")).stdout).toBe("Chassis Power is off");
  // One-time: each override was used by its power-on and is gone now.
  for (const m of bed.machines) {
    expect(m.events().filter((e) => e.what.startsWith("power-on")).map((e) => e.what)).toEqual(["power-on boot=pxe"]);
    expect((await ipmi(m, "chassis", "bootparam", "get", "5")).stdout).toContain("Boot Device Selector : No override");
  }
}, 300_000);

test("the Redfish front, driven by sushy: read, one-time PXE, power on, netboot, power off; a BMC reset keeps one-time semantics", async () => {
  const bios = bed.machines[1]!;
  const before = (await sushy(bios, bed.credentials, "show")).result[0];
  expect(before).toEqual({
    power: "Off",
    target: "None",
    enabled: "Disabled",
    mode: "Legacy",
    allowed_resets: ["ForceOff", "ForceOn", "ForceRestart", "GracefulShutdown", "On"],
    macs: [bios.mac],
  });
  const r = await netboot(bios, "wait", async () => {
    const set = (await sushy(bios, bed.credentials, "pxe-once", "show", "on")).result;
    expect(set[1]).toMatchObject({ power: "Off", target: "Pxe", enabled: "Once", mode: "Legacy" });
  });
  timings.bios_redfish_init = r.init;
  expect(r).toMatchObject({ mac: bios.mac, ip: bios.ip });
  expect(r.firmware).toMatch(/Booting from ROM/);
  expect(r.firmware).not.toMatch(/Booting from Hard Disk/);
  expect((await sushy(bios, bed.credentials, "show")).result[0]).toMatchObject({ power: "On", target: "None", enabled: "Disabled" });

  // A BMC reset of the running machine: the override was used up, so it tries its (blank) disk first…
  const plain = await netboot(bios, "wait", async () => void expect(await ipmi(bios, "power", "reset")).toMatchObject({ code: 0 }));
  expect(plain.firmware).toMatch(/Booting from Hard Disk[^]*Booting from ROM/);
  // …and with one-time PXE set just before, it boots from the network at once (SeaBIOS's own
  // second reset after a warm reset must not lose the override).
  const pxe = await netboot(bios, "wait", async () => {
    expect(await ipmi(bios, "chassis", "bootdev", "pxe")).toMatchObject({ code: 0 });
    expect(await ipmi(bios, "power", "reset")).toMatchObject({ code: 0 });
  });
  timings.bios_reset_pxe_init = pxe.init;
  expect(pxe.firmware).toMatch(/Booting from ROM/);
  expect(pxe.firmware).not.toMatch(/Booting from Hard Disk/);
  expect(bios.events().map((e) => e.what).slice(-4)).toEqual(["power-on boot=pxe", "reset boot=none", "boot-override pxe once", "reset boot=pxe"]);

  const after = (await sushy(bios, bed.credentials, "off", "show")).result;
  expect(after[1]).toMatchObject({ power: "Off" });
  expect((await ipmi(bios, "power", "status")).stdout).toBe("Chassis Power is off");
}, 240_000);

test("a MAC not in the list gets no DHCP answer; a listed one does (no VM needed)", async () => {
  const probe = (mac: string) => dhcpProbe(bed.netns, { dir: bed.dir, bridge: bed.netns.bridge, mac, tries: 2 });
  expect(await probe("52:54:00:66:66:66")).toBeUndefined();
  // dnsmasq heard it, and ignored it.
  for (const deadline = Date.now() + 5000; !/DHCPDISCOVER\(br0\) 52:54:00:66:66:66 ignored/.test(dnsmasq.logText()); await Bun.sleep(100))
    if (Date.now() > deadline) throw new Error(`dnsmasq did not log the unknown MAC's DHCPDISCOVER as ignored:\n${dnsmasq.logText().slice(-2000)}`);
  // The same probe with a listed MAC (the BIOS machine is off) gets that machine's address.
  expect(await probe(bed.machines[1]!.mac)).toBe(bed.machines[1]!.ip);
}, 30_000);

test("the namespace is closed: no default route, no forwarding, no link but the bridge's; the host reaches its services by a unix socket", async () => {
  const ns = bed.netns;
  expect((await ns.run("ip", ["route", "show", "default"])).trim()).toBe("");
  expect((await ns.run("ip", ["-6", "route", "show", "default"])).trim()).toBe("");
  expect((await ns.run("sysctl", ["-n", "net.ipv4.ip_forward"])).trim()).toBe("0");
  const links = (await ns.run("ip", ["-o", "link", "show"])).split("\n").filter(Boolean).map((l) => l.split(": ")[1]!.split("@")[0]);
  expect(links.sort()).toEqual(["br0", "lo", "tap0", "tap1"]);
  // A host-side client of a service listening on the bridge address (here the boot server).
  const sock = join(bed.dir, "to-boot-server.sock");
  await ns.reachFromHost(ns.address, 8080, sock);
  const script = await (await fetch("http://provisioning/boot.ipxe", { unix: sock })).text();
  expect(script).toStartWith("#!ipxe");
}, 30_000);

test("a wrong BMC password is refused by both fronts, and nothing is powered", async () => {
  const wrong = join(bed.dir, "wrong-credentials.json");
  writeCredentials(wrong, { username: "admin", password: "not-the-password" });
  const uefi = bed.machines[0]!;
  const r = await ipmitool(uefi.ipmi, wrong, ["power", "on"]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain("Unable to establish IPMI v2 / RMCP+ session");
  const s = await sushy(uefi, wrong, "on");
  expect(s.code).toBe(3);
  expect(s.result).toMatchObject({ error: "AccessError" });
  expect((await ipmi(uefi, "power", "status")).stdout).toBe("Chassis Power is off");
}, 60_000);
