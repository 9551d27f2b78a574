import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, ftruncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomPassword, writeCredentials } from "./bmc-credentials.ts";
import { startIpmiBmc, type IpmiBmc } from "./bmc-ipmi.ts";
import { createMachine, powerOff, type MachineSpec } from "./chassis.ts";
import { createNetns, NETNS_PREFIX, SUBNET, sweepStaleNetns, type Netns } from "./netns.ts";
import { startRedfish, type RedfishServer } from "./redfish.ts";
import { pidAlive } from "./proc.ts";
import { requireCommand, requireRoot } from "./require.ts";

/**
 * Bare-metal machines for tests: each a qemu VM on a tap in the test's own
 * network namespace, powered only through its BMC — an ipmi_sim on a
 * loopback address and UDP port of its own, and optionally one Redfish
 * server for all of them.
 * The test (or the deployer it drives) never starts a machine itself. The
 * BMCs answer inside the namespace too (ipmi_sim runs there; the Redfish
 * server is forwarded to its loopback), so that a deployer run inside it
 * (`netns.wrap`) sees what one on a provisioning network sees: its bridge
 * address, the machines' NICs, their BMCs.
 *
 *   const bed = await createTestbed({ machines: [{ name: "uefi0", firmware: "uefi" }] });
 *   await ipmitool(bed.machines[0].ipmi, bed.credentials, ["power", "on"]);
 *   await bed.destroy();
 *
 * Everything lives in /tmp/ooo-tb-PID-XXXX (folders) and the namespace
 * ooo-tb-PID-XXXX; a later test bed sweeps both away once PID has exited,
 * with every process they held (qemu, dnsmasq, ipmi_sim, forwarders).
 */
export interface TestMachineSpec {
  name: string;
  firmware: "uefi" | "bios";
  /** Network boot by the firmware's PXE (default for UEFI), its UEFI HTTP boot, or qemu's iPXE ROM (BIOS: the only one). */
  netboot?: "pxe" | "http" | "ipxe";
  /** Sizes of the machine's disks in MiB (sparse files; default one of 4096). */
  disksMiB?: number[];
  memoryMiB?: number;
  /** vCPUs (default 1). */
  cpus?: number;
}

export interface TestMachine {
  name: string;
  firmware: "uefi" | "bios";
  mac: string;
  /** The address a provisioning DHCP server should give it (10.77.0.10, .11, …). */
  ip: string;
  dir: string;
  consoleLog: string;
  ipmi: IpmiBmc;
  /** Redfish system id (with `redfish: true`). */
  systemId: string;
  /** The console so far. */
  console(): string;
  /** Wait for a console line; `from` is a console offset (e.g. its length before power-on). */
  waitConsole(pattern: RegExp, timeoutMs: number, from?: number): Promise<{ match: RegExpExecArray; at: number; end: number }>;
  /** Power events the chassis logged: `[{ at, what }]`, e.g. "power-on boot=pxe". */
  events(): { at: number; what: string }[];
}

export interface Testbed {
  dir: string;
  netns: Netns;
  /** The BMCs' login (a 0600 file): `{ username, password }`. */
  credentials: string;
  machines: TestMachine[];
  redfish?: RedfishServer;
  /** The Redfish server's URL inside the namespace (where a deployer run there reaches it). */
  redfishInNetns?: string;
  destroy(): Promise<void>;
}

export async function createTestbed(o: { machines: TestMachineSpec[]; redfish?: boolean }): Promise<Testbed> {
  requireRoot();
  requireCommand("ip", "ipmi_sim", "ipmitool", "qemu-system-x86_64", "socat", "ss", "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/seabios/bios-256k.bin");
  await sweepStale();
  const netns = await createNetns();
  // The namespace's name (with the pid) names the folder too: one sweep finds both.
  const dir = mkdtempSync(join(tmpdir(), `${netns.name}-`));
  // dnsmasq drops to its own user: it must reach a TFTP root made in here.
  chmodSync(dir, 0o755);
  const bmcs: IpmiBmc[] = [];
  const machines: TestMachine[] = [];
  let redfish: RedfishServer | undefined;
  const destroy = async () => {
    await redfish?.stop();
    for (const m of machines) await powerOff(m.dir).catch(() => {});
    for (const b of bmcs) await b.stop().catch(() => {});
    await netns.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const credentials = join(dir, "bmc-credentials.json");
    writeCredentials(credentials, { username: "admin", password: randomPassword() });
    for (const [i, spec] of o.machines.entries()) {
      const mdir = join(dir, spec.name);
      mkdirSync(mdir, { mode: 0o700 });
      const tap = await netns.addTap(`tap${i}`);
      const disks = (spec.disksMiB ?? [4096]).map((mib, d) => sparseFile(join(mdir, `disk${d}.raw`), mib));
      const mac = `52:54:00:77:00:${(0x10 + i).toString(16).padStart(2, "0")}`;
      const m: MachineSpec = createMachine(mdir, {
        name: spec.name,
        firmware: spec.firmware,
        mac,
        netns: netns.name,
        tap,
        disks,
        memoryMiB: spec.memoryMiB ?? 512,
        cpus: spec.cpus ?? 1,
        netboot: spec.netboot ?? (spec.firmware === "bios" ? "ipxe" : "pxe"),
      });
      // Each BMC on a loopback address of its own (127.0.0.10, .11, …), as real BMCs have: Ironic spaces its commands per address.
      const ipmi = await startIpmiBmc({ dir: join(mdir, "bmc"), machineDir: mdir, credentials, name: m.name, netns, address: `127.0.0.${10 + i}` });
      bmcs.push(ipmi);
      machines.push(testMachine(m, mdir, `${SUBNET}.${10 + i}`, ipmi));
    }
    let redfishInNetns: string | undefined;
    if (o.redfish) {
      const sock = join(dir, "redfish.sock");
      redfish = startRedfish({ systems: Object.fromEntries(machines.map((m) => [m.systemId, m.dir])), credentials, unix: sock });
      // Inside the namespace, on its loopback: where BMCs are for a deployer there.
      await netns.exposeUnix(REDFISH_NETNS_PORT, sock, "127.0.0.1");
      redfishInNetns = `http://127.0.0.1:${REDFISH_NETNS_PORT}`;
    }
    return { dir, netns, credentials, machines, redfish, redfishInNetns, destroy };
  } catch (e) {
    await destroy();
    throw e;
  }
}

const REDFISH_NETNS_PORT = 8000;

function sparseFile(file: string, mib: number) {
  const fd = openSync(file, "w");
  ftruncateSync(fd, mib * 1024 * 1024);
  closeSync(fd);
  return file;
}

function testMachine(spec: MachineSpec, dir: string, ip: string, ipmi: IpmiBmc): TestMachine {
  const consoleLog = join(dir, "console.log");
  const console = () => (existsSync(consoleLog) ? readFileSync(consoleLog, "latin1").replaceAll("\r", "") : "");
  return {
    name: spec.name,
    firmware: spec.firmware,
    mac: spec.mac,
    ip,
    dir,
    consoleLog,
    ipmi,
    systemId: spec.name,
    console,
    async waitConsole(pattern, timeoutMs, from = 0) {
      for (const deadline = Date.now() + timeoutMs; ; await Bun.sleep(50)) {
        const text = console().slice(from);
        const match = pattern.exec(text);
        if (match) return { match, at: Date.now(), end: from + match.index + match[0].length };
        if (Date.now() > deadline) {
          const tail = text.trimEnd().split("\n").slice(-15).join("\n    ");
          throw new Error(`${spec.name} did not print ${pattern} within ${timeoutMs / 1000} s; console tail:\n    ${tail}`);
        }
      }
    },
    events() {
      const file = join(dir, "events.log");
      if (!existsSync(file)) return [];
      return readFileSync(file, "utf8")
        .trim()
        .split("\n")
        .map((l) => ({ at: Date.parse(l.slice(0, l.indexOf(" "))), what: l.slice(l.indexOf(" ") + 1) }));
    },
  };
}

/** Stop what crashed test beds left: namespaces (with their processes), BMCs and folders of exited pids. */
export async function sweepStale() {
  await sweepStaleNetns();
  const dead = (name: string) => {
    const m = new RegExp(`^${NETNS_PREFIX}(\\d+)-`).exec(name);
    return m !== null && !pidAlive(Number(m[1]));
  };
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue;
    }
    const m = new RegExp(`${tmpdir()}/(${NETNS_PREFIX}\\d+-[^/]+)/`).exec(cmdline);
    if (m && cmdline.startsWith("ipmi_sim") && dead(m[1]!)) process.kill(Number(pid), "SIGKILL");
  }
  for (const name of readdirSync(tmpdir()))
    if (dead(name) && statSync(join(tmpdir(), name)).isDirectory()) rmSync(join(tmpdir(), name), { recursive: true, force: true });
}
