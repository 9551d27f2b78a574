import { appendFileSync, copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { Qmp } from "../../lib/qemu/qmp.ts";
import { TCG_ACCEL, TCG_CPU } from "../../lib/qemu/machine.ts";
import { pidAlive } from "./proc.ts";

/**
 * The chassis of a test machine: what a BMC controls. A machine is a folder
 * (`machine.json` says what it is); its power is a detached qemu inside the
 * test's network namespace, started and stopped only through these
 * functions, which both BMC fronts share (the IPMI chassis program and the
 * Redfish server). Nothing here knows a test: the qemu outlives the process
 * that powered it on, as a real machine outlives its BMC session.
 *
 * Files in the folder: machine.json, boot.json (the boot override),
 * qemu.pid, qmp.sock, console.log (every power-on appends), qemu.log,
 * vars.fd (a UEFI machine's own NVRAM), events.log (one line per power
 * event, with the time: how tests count firmware boots and time them).
 */
export const MachineSpec = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,30}$/).describe("machine name, also qemu's -name"),
  firmware: z.enum(["uefi", "bios"]).describe("OVMF or SeaBIOS"),
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/).describe("the NIC's MAC address, lower case"),
  netns: z.string().regex(/^[\w.-]+$/).describe("network namespace holding the tap"),
  tap: z.string().regex(/^[\w.-]{1,15}$/).describe("tap device on the provisioning bridge"),
  disks: z.array(z.string().startsWith("/")).max(4).default([]).describe("raw disk image files, as virtio disks"),
  memoryMiB: z.number().int().min(128).default(1024),
  cpus: z.number().int().min(1).default(1),
  /**
   * What runs a network boot: `pxe` is the firmware's own PXE (OVMF's
   * network stack, as on most servers), `http` OVMF's own UEFI HTTP boot
   * (its PXE and IPv6 turned off, so HTTPv4 is the one network boot left),
   * `ipxe` the iPXE option ROM qemu ships for its NICs. SeaBIOS has no
   * network stack: a BIOS machine needs `ipxe`.
   */
  netboot: z.enum(["pxe", "http", "ipxe"]).default("pxe"),
});
export type MachineSpec = z.output<typeof MachineSpec>;

/** A BMC's boot override, in Redfish's terms (IPMI's `chassis bootdev` maps onto it). */
export const BootOverride = z.object({
  target: z.enum(["none", "pxe", "disk"]),
  enabled: z.enum(["disabled", "once", "continuous"]),
});
export type BootOverride = z.output<typeof BootOverride>;

const NO_OVERRIDE: BootOverride = { target: "none", enabled: "disabled" };

const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";

export class ChassisError extends Error {
  constructor(machine: string, message: string) {
    super(`${machine}: ${message}`);
  }
}

export function readSpec(dir: string): MachineSpec {
  return MachineSpec.parse(JSON.parse(readFileSync(join(dir, "machine.json"), "utf8")));
}

/** Write a new machine's folder: its spec, and for UEFI a fresh NVRAM of its own. */
export function createMachine(dir: string, spec: z.input<typeof MachineSpec>): MachineSpec {
  const s = MachineSpec.parse(spec);
  if (s.firmware === "bios" && s.netboot !== "ipxe") throw new ChassisError(s.name, "SeaBIOS boots from the network only with netboot: ipxe");
  writeFileSync(join(dir, "machine.json"), JSON.stringify(s, null, 2) + "\n");
  if (s.firmware === "uefi") copyFileSync(OVMF_VARS, join(dir, "vars.fd"));
  // SeaBIOS prints on a serial port only when told which: its own lines and
  // the boot attempts ("Booting from Hard Disk...", iPXE's) then reach the
  // console log, as OVMF's do. The value is a little-endian I/O port (ttyS0).
  else writeFileSync(join(dir, "sercon-port"), Buffer.from([0xf8, 0x03]));
  writeBoot(dir, NO_OVERRIDE);
  return s;
}

/** The serial number of a machine's disk `i` (qemu's virtio-blk serial): NAME-i in capitals. */
export const diskSerial = (machine: string, i: number) => `${machine.toUpperCase()}-${i}`;

export function bootOverride(dir: string): BootOverride {
  const file = join(dir, "boot.json");
  return existsSync(file) ? BootOverride.parse(JSON.parse(readFileSync(file, "utf8"))) : NO_OVERRIDE;
}

function writeBoot(dir: string, o: BootOverride) {
  writeFileSync(join(dir, "boot.json.tmp"), JSON.stringify(o) + "\n");
  // rename: a reader never sees half a file
  renameSync(join(dir, "boot.json.tmp"), join(dir, "boot.json"));
}

/**
 * Set the override. A one-time one is applied at the next power-on or
 * reset through the BMC (not at a reboot the machine does itself: nothing
 * watches qemu between BMC calls); a continuous one (or its end) also holds
 * for the machine's own reboots, so a running machine gets it at once.
 */
export async function setBootOverride(dir: string, o: BootOverride) {
  writeBoot(dir, BootOverride.parse(o));
  event(dir, `boot-override ${o.target} ${o.enabled}`);
  if (runningPid(dir)) await setBootOrder(dir, readSpec(dir), standingTarget(dir));
}

/** The boot order a machine keeps between BMC actions: a continuous override's, else its own. */
function standingTarget(dir: string): BootOverride["target"] {
  const o = bootOverride(dir);
  return o.enabled === "continuous" ? o.target : "none";
}

function event(dir: string, what: string) {
  appendFileSync(join(dir, "events.log"), `${new Date().toISOString()} ${what}\n`);
}

/** The qemu process id if the machine is on (alive and not a zombie). */
function runningPid(dir: string): number | undefined {
  const file = join(dir, "qemu.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  try {
    // The pid file outlives qemu; the number may since name another process.
    return pidAlive(pid) && readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("qemu-system") ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function powerState(dir: string): "on" | "off" {
  return runningPid(dir) ? "on" : "off";
}

/**
 * Boot order as qemu's bootindex: the firmware tries the lowest first.
 * Without an override a machine tries its disks, then the network, as a
 * server fresh from the rack does.
 */
function bootOrder(spec: MachineSpec, target: BootOverride["target"]): { nic: number; disks: number[] } {
  const disks = spec.disks.map((_, i) => i + 1);
  return target === "pxe" ? { nic: 1, disks: disks.map((d) => d + 1) } : { nic: disks.length + 1, disks };
}

/** The override to apply at this boot; a one-time override is used up by it. */
function takeOverride(dir: string): BootOverride["target"] {
  const o = bootOverride(dir);
  if (o.enabled === "disabled") return "none";
  if (o.enabled === "once") writeBoot(dir, NO_OVERRIDE);
  return o.target;
}

function qemuArgs(dir: string, spec: MachineSpec, target: BootOverride["target"]): string[] {
  const order = bootOrder(spec, target);
  return [
    "-name", spec.name,
    // lib/qemu/machine.ts's CPU model and translation cache for TCG.
    "-accel", TCG_ACCEL,
    "-cpu", TCG_CPU,
    "-m", String(spec.memoryMiB),
    "-smp", String(spec.cpus),
    "-display", "none",
    "-no-user-config",
    "-nodefaults",
    "-daemonize",
    "-pidfile", join(dir, "qemu.pid"),
    "-qmp", `unix:${join(dir, "qmp.sock")},server=on,wait=off`,
    "-chardev", `file,id=console,path=${join(dir, "console.log")},append=on`,
    "-serial", "chardev:console",
    ...(spec.firmware === "uefi"
      ? ["-drive", `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`, "-drive", `if=pflash,format=raw,unit=1,file=${join(dir, "vars.fd")}`]
      : ["-fw_cfg", `name=etc/sercon-port,file=${join(dir, "sercon-port")}`]),
    ...(spec.netboot === "http"
      ? ["-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no", "-fw_cfg", "name=opt/org.tianocore/IPv6Support,string=no"]
      : []),
    "-netdev", `tap,id=net0,ifname=${spec.tap},script=no,downscript=no`,
    "-device",
    `virtio-net-pci,id=nic0,netdev=net0,mac=${spec.mac},bootindex=${order.nic}${spec.netboot === "ipxe" ? "" : ",romfile="}`,
    // OVMF's network stack wants entropy (newer builds refuse to start without it).
    "-device", "virtio-rng-pci",
    ...spec.disks.flatMap((file, i) => [
      "-drive", `if=none,id=drive${i},file=${file},format=raw,cache=unsafe,discard=unmap`,
      // A serial per disk, as real disks have: what root device hints name.
      "-device", `virtio-blk-pci,id=disk${i},drive=drive${i},bootindex=${order.disks[i]},serial=${diskSerial(spec.name, i)}`,
    ]),
  ];
}

/**
 * One QMP conversation, bounded in time: lib/qemu/qmp.ts waits forever for
 * an answer when qemu exits mid-conversation (a machine powering itself off
 * just as its BMC is asked to), and a hung chassis program would hang
 * ipmi_sim with it.
 */
async function qmp<T>(dir: string, fn: (q: Qmp) => Promise<T>, timeoutMs = 10_000): Promise<T> {
  let q: Qmp | undefined;
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ChassisError(readSpec(dir).name, `qemu's QMP did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([
      (async () => {
        q = await Qmp.connect(join(dir, "qmp.sock"), 5000);
        return fn(q);
      })(),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
    q?.close();
  }
}

/**
 * Set the boot order qemu hands the firmware at its next reset. qemu builds
 * the firmware's `bootorder` list from the devices' bootindex at every
 * system reset, so a change here is seen by the next reset only: setting
 * it back right after a reset makes an override last exactly one boot.
 */
async function setBootOrder(dir: string, spec: MachineSpec, target: BootOverride["target"]) {
  const order = bootOrder(spec, target);
  const devices = [["nic0", order.nic], ...order.disks.map((n, i) => [`disk${i}`, n])] as const;
  await qmp(dir, async (q) => {
    // Two passes: bootindex values must stay unique at every step.
    for (const [i, [id]] of devices.entries()) await q.command("qom-set", { path: `/machine/peripheral/${id}`, property: "bootindex", value: 100 + i });
    for (const [id, n] of devices) await q.command("qom-set", { path: `/machine/peripheral/${id}`, property: "bootindex", value: n });
  });
}

export async function powerOn(dir: string) {
  const spec = readSpec(dir);
  if (runningPid(dir)) return;
  const target = takeOverride(dir);
  rmSync(join(dir, "qemu.pid"), { force: true });
  const argv = ["ip", "netns", "exec", spec.netns, "qemu-system-x86_64", ...qemuArgs(dir, spec, target)];
  // -daemonize: qemu returns once the machine is set up, and lives on alone.
  const p = Bun.spawnSync(argv, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  appendFileSync(join(dir, "qemu.log"), p.stderr);
  if (p.exitCode !== 0) throw new ChassisError(spec.name, `qemu did not start: ${p.stderr.toString().trim().slice(-500)}`);
  event(dir, `power-on boot=${target}`);
  if (target !== standingTarget(dir)) await setBootOrder(dir, spec, standingTarget(dir));
}

/** Pull the plug: qemu quits at once. */
export async function powerOff(dir: string) {
  const pid = runningPid(dir);
  if (!pid) return;
  await qmp(dir, (q) => q.command("quit"), 2000).catch(() => {});
  for (const deadline = Date.now() + 5000; runningPid(dir); await Bun.sleep(20)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      break;
    }
  }
  event(dir, "power-off");
}

/** The ACPI power button: the guest decides (a guest without ACPI handling ignores it). */
export async function softOff(dir: string) {
  if (!runningPid(dir)) return;
  await qmp(dir, (q) => q.command("system_powerdown"));
  event(dir, "soft-off");
}

/** The reset button, with the pending boot override; a machine that is off is powered on instead. */
export async function reset(dir: string) {
  if (!runningPid(dir)) return powerOn(dir);
  const spec = readSpec(dir);
  const target = takeOverride(dir);
  await setBootOrder(dir, spec, target);
  const firmwareReset = await qmp(
    dir,
    async (q) => {
      const t0 = performance.now();
      await q.command("system_reset");
      // The reset happens after the command returns; its RESET event says the
      // boot order for the firmware has been taken. SeaBIOS, finding it ran
      // before, resets the machine once more itself (~50 ms later): that
      // reset takes the boot order again, so the override must outlive it
      // too. How long it took goes to qemu.log: once, on a loaded host, a
      // BIOS machine booted its disk after such a reset although the wait
      // had seen SeaBIOS's reset (cause not found; the deployer now notices
      // a disk boot and sends the machine to the network again).
      const resets = (guest: boolean) => q.events.filter((e) => e.event === "RESET" && (e.data as { guest?: boolean })?.guest === guest).length;
      for (const deadline = Date.now() + 5000; resets(false) < 1; await Bun.sleep(10))
        if (Date.now() > deadline) throw new ChassisError(spec.name, "qemu did not reset within 5 s");
      if (spec.firmware !== "bios") return "";
      for (const deadline = Date.now() + 15_000; resets(true) < 1 && Date.now() < deadline; ) await Bun.sleep(10);
      return resets(true) ? ` (firmware reset after ${((performance.now() - t0) / 1000).toFixed(2)} s)` : " (no firmware reset within 15 s)";
    },
    25_000,
  );
  event(dir, `reset boot=${target}`);
  if (firmwareReset) appendFileSync(join(dir, "qemu.log"), `${new Date().toISOString()} reset boot=${target}${firmwareReset}\n`);
  if (target !== standingTarget(dir)) await setBootOrder(dir, spec, standingTarget(dir));
}
