import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { z } from "zod";
import type { Problem } from "../../lib/errors.ts";
import { Qmp } from "../../lib/qemu/qmp.ts";
import { machineArgs } from "../../lib/qemu/machine.ts";
import { chooseAccel } from "../../lib/qemu/accel.ts";
import { newVarStore, ovmfMissing } from "../../lib/qemu/firmware.ts";
import { BootMode } from "../../wire/deploy.ts";
import { makeConfigDrive } from "../config-drive.ts";
import { freePort } from "../daemons.ts";
import { DriverFailed } from "../errors.ts";
import type { DriverNode, HostService, NodeDriver, PowerState, PowerTarget, ProvisionRequest } from "./driver.ts";
import { writeDisk } from "./qemu-disk.ts";

/**
 * The qemu driver: every node a virtual machine on this host — the "virtual
 * machines in developer test" of the original design. The VM runs detached
 * (qemu -daemonize, a pidfile), so it outlives the `ooo` command that
 * powered it on; power control goes through QMP on a unix socket in the
 * node's folder; the serial console is appended to console.log there.
 *
 * Networking is qemu's user mode with restrict=on: the guest reaches
 * nothing but the forwards given, each to a service on the host's loopback
 * through a small script qemu runs per connection (one socat each: a plain
 * tcp guestfwd opens only ONE connection, when qemu starts). The script reads
 * the service's port file at every connection, so a service may restart on
 * another port while nodes run. The bytes pass through as they are: a
 * service that speaks TLS (guest port 443) is verified by the node itself.
 *
 * Powered off means no qemu process, as sushy-tools' ForceOff destroys the
 * libvirt domain.
 *
 * Firmware: SeaBIOS, or OVMF (`boot_mode: uefi`) with the node's own UEFI
 * variable store in its folder, made fresh when the node is provisioned
 * (a new machine) and kept across power cycles (its NVRAM). The golden disk
 * boots under either.
 */
export const QemuPool = z
  .strictObject({
    driver: z.literal("qemu"),
    accel: z
      .enum(["tcg", "kvm", "auto"])
      .default("tcg")
      .describe("qemu acceleration: tcg always works; kvm is faster where it works; auto probes KVM once per host boot"),
    max_nodes: z.int().min(0).optional().describe("At most this many VMs from this pool (default: no limit)"),
    boot_mode: BootMode.default("bios").describe(
      "The VMs' firmware: bios (SeaBIOS; the quicker boot under emulation) or uefi (OVMF, Debian's ovmf). Golden disks boot under both; a stack that wants both has an inventory entry for each",
    ),
  })
  .describe("Virtual machines on this host, made on demand");
export type QemuPool = z.infer<typeof QemuPool>;

/** A node's pool settings; a node made before a setting existed gets its default (and one made before nodes kept their entry, all of them). */
const poolOf = (node: DriverNode): QemuPool => QemuPool.parse({ ...node.pool, driver: "qemu" });

/** Guest addresses of the host services (10.0.2.0/24 is qemu's user network; .2 host, .3 DNS, .15 the guest). */
const GUEST_IP: Record<HostService["name"], string> = { metadata: "10.0.2.100", store: "10.0.2.101" };

/** What power-on needs, written at provision time so any later process can power the node on. */
const VmSpec = z.object({
  memoryMiB: z.number(),
  cpus: z.number(),
  services: z.array(z.object({ name: z.enum(["metadata", "store"]), host: z.string(), portFile: z.string(), tls: z.boolean().default(false) })),
  probeKernel: z.string().optional(),
  hostForwards: z.array(z.object({ hostPort: z.number(), guestPort: z.number() })).default([]),
});

const files = (node: DriverNode) => ({
  disk: join(node.dir, "disk.raw"),
  configDrive: join(node.dir, "config-drive.img"),
  console: join(node.dir, "console.log"),
  pid: join(node.dir, "qemu.pid"),
  spec: join(node.dir, "vm.json"),
  varStore: join(node.dir, "ovmf-vars.fd"),
  qmp: qmpPath(node.dir),
  forward: (service: string) => join(node.dir, `forward-${service}`),
});

/** Unix socket paths are limited to 108 bytes; a deep state folder gets its sockets under /run. */
function qmpPath(dir: string): string {
  const inDir = join(dir, "qmp.sock");
  if (Buffer.byteLength(inDir) < 100) return inDir;
  const short = join("/run/ooo-qemu", createHash("sha256").update(dir).digest("hex").slice(0, 16));
  mkdirSync("/run/ooo-qemu", { recursive: true, mode: 0o700 });
  return `${short}.qmp`;
}

/** The pid of the node's qemu if it is running (checked against its command line, not only the pidfile). */
function runningPid(node: DriverNode): number | undefined {
  const f = files(node);
  let pid: number;
  try {
    pid = Number(readFileSync(f.pid, "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (cmdline.includes("qemu-system") && cmdline.includes(f.disk)) return pid;
  } catch {}
  return undefined;
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await Bun.sleep(50)) {
    if (!existsSync(`/proc/${pid}`)) return true;
    try {
      // A zombie (not yet reaped by init) is gone for our purposes.
      if (/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"))) return true;
    } catch {
      return true;
    }
  }
  return false;
}

async function qmpCommand(node: DriverNode, command: string): Promise<void> {
  const qmp = await Qmp.connect(files(node).qmp, 5_000);
  try {
    await qmp.command(command);
  } finally {
    qmp.close();
  }
}

function readSpec(node: DriverNode) {
  const file = files(node).spec;
  return existsSync(file) ? VmSpec.safeParse(JSON.parse(readFileSync(file, "utf8"))).data : undefined;
}

function shellQuote(s: string) {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function writeForward(path: string, service: HostService) {
  writeFileSync(
    path,
    `#!/bin/sh\n# qemu runs this for each connection the guest opens to ${GUEST_IP[service.name]}:${service.tls ? 443 : 80}; stdin/stdout are that connection.\n` +
      `exec socat STDIO "TCP:${service.host}:$(cat ${shellQuote(service.portFile)})"\n`,
  );
  chmodSync(path, 0o755);
}

async function powerOn(node: DriverNode) {
  if (runningPid(node) !== undefined) return;
  const f = files(node);
  if (!existsSync(f.disk) || !existsSync(f.spec)) throw new DriverFailed(node.name, "has no disk yet: provision it before powering it on");
  const spec = VmSpec.parse(JSON.parse(readFileSync(f.spec, "utf8")));
  const pool = poolOf(node);
  const accel = await chooseAccel(pool.accel, spec.probeKernel && existsSync(spec.probeKernel) ? spec.probeKernel : undefined);
  // A node provisioned while its pool said bios has no variable store yet.
  if (pool.boot_mode === "uefi" && !existsSync(f.varStore)) newVarStore(f.varStore);
  rmSync(f.qmp, { force: true });
  const args = [
    ...machineArgs({
      name: node.name,
      accel,
      memoryMiB: spec.memoryMiB,
      cpus: spec.cpus,
      guestForwards: spec.services.map((s) => ({ ip: GUEST_IP[s.name], port: s.tls ? 443 : 80, command: f.forward(s.name) })),
      hostForwards: spec.hostForwards,
      firmware: pool.boot_mode,
      varStore: f.varStore,
    }),
    "-drive", `file=${f.disk},format=raw,if=none,id=disk0,cache=writeback,discard=unmap,detect-zeroes=unmap`,
    "-device", "virtio-blk-pci,drive=disk0,bootindex=0",
    "-drive", `file=${f.configDrive},format=raw,if=none,id=config2,readonly=on`,
    "-device", "virtio-blk-pci,drive=config2",
    "-chardev", `file,id=console,path=${f.console},append=on`,
    "-serial", "chardev:console",
    "-qmp", `unix:${f.qmp},server=on,wait=off`,
    "-pidfile", f.pid,
    "-daemonize",
  ];
  writeFileSync(join(node.dir, "qemu.args"), args.join("\n") + "\n");
  // -daemonize: the parent exits once the VM is set up (non-zero, with the reason, if it could not be); the VM runs on in its own session.
  const r = await execa("qemu-system-x86_64", args, { reject: false, all: true, stdin: "ignore", timeout: 60_000 });
  if (r.exitCode !== 0) throw new DriverFailed(node.name, `qemu did not start: ${String(r.all).trim().split("\n").slice(-5).join("; ")}`);
  if (runningPid(node) === undefined) throw new DriverFailed(node.name, "qemu started but its pidfile names no running qemu");
}

async function powerOff(node: DriverNode, soft: boolean, timeoutSeconds: number) {
  const pid = runningPid(node);
  if (pid === undefined) return;
  if (soft) {
    await qmpCommand(node, "system_powerdown").catch(() => {});
    if (await waitGone(pid, timeoutSeconds * 1000)) return;
  }
  await qmpCommand(node, "quit").catch(() => {});
  if (await waitGone(pid, 10_000)) return;
  process.kill(pid, "SIGKILL");
  if (!(await waitGone(pid, 10_000))) throw new DriverFailed(node.name, `qemu (pid ${pid}) would not stop`);
}

export const qemuDriver: NodeDriver<QemuPool> = {
  name: "qemu",
  pool: QemuPool,

  async check(pool) {
    const problems: Problem[] = [];
    for (const [program, pkg] of [
      ["qemu-system-x86_64", "qemu-system-x86"],
      ["socat", "socat"],
      ["mkfs.ext4", "e2fsprogs"],
      ["sfdisk", "fdisk"],
    ] as const)
      if (!Bun.which(program)) problems.push({ message: `the qemu driver needs ${program}: apt-get install ${pkg}` });
    if (pool.accel === "kvm" && !existsSync("/dev/kvm")) problems.push({ message: "accel: kvm, but this host has no /dev/kvm" });
    const ovmf = pool.boot_mode === "uefi" ? ovmfMissing() : undefined;
    if (ovmf) problems.push({ message: `boot_mode: uefi needs ${ovmf}` });
    return problems;
  },

  serviceUrl(service, options = {}) {
    return `${options.tls ? "https" : "http"}://${GUEST_IP[service]}`;
  },

  async provision(node, request: ProvisionRequest) {
    const image = request.image;
    if (!("path" in image)) throw new DriverFailed(node.name, "the qemu driver writes a disk from the image cache, and was given only a URL (this is a bug in ooo)");
    if (runningPid(node) !== undefined) throw new DriverFailed(node.name, "is powered on: its disk can only be written while it is off");
    if (/[\s,'"]/.test(node.dir))
      throw new DriverFailed(node.name, `the state folder ${node.dir} has a space, comma or quote: qemu's options cannot hold it`, {
        hint: "Use --state-dir with a plain path.",
      });
    // The config drive holds the node's token: the folder is the node's and ooo's only.
    mkdirSync(node.dir, { recursive: true, mode: 0o700 });
    chmodSync(node.dir, 0o700);
    const f = files(node);
    const tmpDisk = `${f.disk}.new`;
    const tmpDrive = `${f.configDrive}.new`;
    const tmpVars = `${f.varStore}.new`;
    try {
      await writeDisk(image.path, tmpDisk, node.size.diskBytes);
      await makeConfigDrive(tmpDrive, request.configDrive);
      const uefi = poolOf(node).boot_mode === "uefi";
      if (uefi) newVarStore(tmpVars);
      for (const s of request.services) writeForward(f.forward(s.name), s);
      // Exposed ports keep their host port across rebuilds, so what a user noted stays true.
      const before = readSpec(node)?.hostForwards ?? [];
      const hostForwards = [];
      for (const guestPort of request.expose ?? [])
        hostForwards.push({ guestPort, hostPort: before.find((b) => b.guestPort === guestPort)?.hostPort ?? freePort() });
      const spec = { memoryMiB: node.size.memoryMiB, cpus: node.size.cpus, services: request.services, probeKernel: image.kernel, hostForwards };
      writeFileSync(f.spec, JSON.stringify(spec, null, 2) + "\n");
      renameSync(tmpDisk, f.disk);
      renameSync(tmpDrive, f.configDrive);
      if (uefi) renameSync(tmpVars, f.varStore);
      else rmSync(f.varStore, { force: true });
    } catch (e) {
      if (e instanceof DriverFailed) throw e;
      throw new DriverFailed(node.name, `writing the image failed: ${(e as Error).message}`, { cause: e });
    } finally {
      rmSync(tmpDisk, { force: true });
      rmSync(tmpDrive, { force: true });
      rmSync(tmpVars, { force: true });
    }
  },

  async powerState(node): Promise<PowerState> {
    return runningPid(node) === undefined ? "off" : "on";
  },

  async setPower(node, target: PowerTarget, options = {}) {
    const timeout = options.timeoutSeconds ?? 60;
    switch (target) {
      case "on":
        return powerOn(node);
      case "off":
        return powerOff(node, false, timeout);
      case "soft-off":
        return powerOff(node, true, timeout);
      case "reset":
        if (runningPid(node) === undefined) throw new DriverFailed(node.name, "is powered off: nothing to reset");
        return qmpCommand(node, "system_reset");
      case "reboot":
        await powerOff(node, false, timeout);
        return powerOn(node);
    }
  },

  consoleLog(node) {
    return files(node).console;
  },

  async destroy(node) {
    await powerOff(node, false, 10);
    const f = files(node);
    rmSync(f.qmp, { force: true });
    rmSync(node.dir, { recursive: true, force: true });
  },

  async describe(node) {
    const f = files(node);
    const pid = runningPid(node);
    const out: Record<string, string> = { console: f.console, firmware: poolOf(node).boot_mode };
    if (pid !== undefined) out.pid = String(pid);
    if (existsSync(f.disk)) out.disk = `${f.disk} (${(statSync(f.disk).blocks * 512 / 2 ** 20).toFixed(0)} MiB used)`;
    if (pid !== undefined) out.qmp = f.qmp;
    for (const fwd of readSpec(node)?.hostForwards ?? []) out[`port ${fwd.guestPort}`] = `127.0.0.1:${fwd.hostPort}`;
    return out;
  },

  endpoint(node, guestPort) {
    const fwd = readSpec(node)?.hostForwards.find((h) => h.guestPort === guestPort);
    return fwd ? `127.0.0.1:${fwd.hostPort}` : undefined;
  },
};
