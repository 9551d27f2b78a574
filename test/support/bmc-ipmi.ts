import type { Subprocess } from "bun";
import { closeSync, mkdirSync, openSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { readCredentials } from "./bmc-credentials.ts";
import type { Netns } from "./netns.ts";

/**
 * A machine's IPMI BMC: OpenIPMI's ipmi_sim (Debian `openipmi`) on a UDP
 * port of the host's loopback, with chassis-ipmi.ts as its chassis-control
 * program, so ipmitool's power and boot-device commands drive the
 * machine's qemu. Learned on this machine (Debian openipmi 2.0.33):
 * - the state folder given with -s must exist, or ipmi_sim never opens its
 *   LAN socket and says nothing;
 * - without `chassis_control`, `power on/off` answer "Invalid data field";
 * - the emu file must name the BMC (`mc_setbmc 0x20`: else "No bmc_ipmb
 *   specified or configured" and exit 1), add and enable it (`mc_add 0x20 0
 *   no-device-sdrs …`, `mc_enable 0x20`).
 */
const CHASSIS_PROGRAM = resolve(import.meta.dir, "chassis-ipmi.ts");

export interface IpmiBmc {
  address: string;
  port: number;
  dir: string;
  /** The namespace whose loopback it listens on (else the host's). */
  netns?: Netns;
  stop(): Promise<void>;
}

/** A UDP port free on loopback right now. */
function freeUdpPort(address: string): Promise<number> {
  return Bun.udpSocket({ hostname: address, port: 0 }).then((s) => {
    const port = s.port;
    s.close();
    return port;
  });
}

function lanConf(o: { name: string; address: string; port: number; username: string; password: string; chassis: string }) {
  return [
    `name "${o.name}"`,
    "set_working_mc 0x20",
    "  startlan 1",
    `    addr ${o.address} ${o.port}`,
    "    priv_limit admin",
    // IPMI 1.5 logins (-I lan) with an MD5 digest only; never "none" or "straight".
    "    allowed_auths_callback md5",
    "    allowed_auths_user md5",
    "    allowed_auths_operator md5",
    "    allowed_auths_admin md5",
    `    guid ${Buffer.from(o.name.padEnd(16, "-").slice(0, 16)).toString("hex")}`,
    "  endlan",
    `  chassis_control "${o.chassis}"`,
    // User 1 is IPMI's anonymous user: present but disabled.
    '  user 1 false "" "" user 1 md5',
    `  user 2 true "${o.username}" "${o.password}" admin 10 md5`,
    "",
  ].join("\n");
}

const EMU = ["mc_setbmc 0x20", "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr", "mc_enable 0x20", ""].join("\n");

/**
 * With `netns`, ipmi_sim runs inside the namespace and listens on its
 * loopback: a deployer run inside the namespace (as on a host of the
 * provisioning network) reaches it there, as a real one reaches its BMCs.
 * `address` is a loopback address of its own (127.0.0.0/8), as each real
 * BMC has one: Ironic spaces its commands to one address 5 s apart
 * ([ipmi] min_command_interval), for every BMC on it.
 */
export async function startIpmiBmc(o: { dir: string; machineDir: string; credentials: string; name: string; netns?: Netns; address?: string }): Promise<IpmiBmc> {
  const address = o.address ?? "127.0.0.1";
  const creds = readCredentials(o.credentials);
  mkdirSync(join(o.dir, "state"), { recursive: true, mode: 0o700 });
  // popen runs the chassis program through the shell: it gets plain paths. The clone (and bun) may
  // live anywhere, so they are reached through links in the BMC's own folder (Bun follows a link
  // to the module's real path, where its imports resolve).
  const [bun, chassis] = [join(o.dir, "bun"), join(o.dir, "chassis-ipmi.ts")];
  symlinkSync(process.execPath, bun);
  symlinkSync(CHASSIS_PROGRAM, chassis);
  for (const p of [bun, chassis, o.machineDir])
    if (!/^[\w./+-]+$/.test(p)) throw new Error(`${p}: ipmi_sim runs its chassis program through a shell; use a path without blanks or quotes`);
  const port = await freeUdpPort(address);
  const conf = join(o.dir, "lan.conf");
  writeFileSync(conf, lanConf({ name: o.name, address, port, ...creds, chassis: `${bun} ${chassis} ${o.machineDir}` }), { mode: 0o600 });
  writeFileSync(join(o.dir, "sim.emu"), EMU);
  const log = join(o.dir, "ipmi_sim.log");
  const out = openSync(log, "a");
  const argv = ["ipmi_sim", "-n", "-c", conf, "-f", join(o.dir, "sim.emu"), "-s", join(o.dir, "state")];
  const p: Subprocess = Bun.spawn(o.netns ? o.netns.wrap(argv[0]!, argv.slice(1)) : argv, {
    stdin: "ignore",
    stdout: out,
    stderr: out,
  });
  closeSync(out);
  const bmc: IpmiBmc = {
    address,
    port,
    dir: o.dir,
    ...(o.netns ? { netns: o.netns } : {}),
    async stop() {
      p.kill();
      await p.exited;
    },
  };
  for (const deadline = Date.now() + 5000; !(await listening(address, port, o.netns)); await Bun.sleep(20)) {
    if (p.exitCode !== null || Date.now() > deadline) {
      await bmc.stop();
      throw new Error(`ipmi_sim for ${o.name} did not open ${address}:${port}:\n${readFileSync(log, "utf8").slice(-2000)}`);
    }
  }
  return bmc;
}

async function listening(address: string, port: number, netns?: Netns) {
  const argv = ["ss", "-Huln", `sport = :${port}`];
  const r = await execa(netns ? "ip" : argv[0]!, netns ? ["netns", "exec", netns.name, ...argv] : argv.slice(1), { reject: false });
  return String(r.stdout).includes(`${address}:${port}`);
}

/**
 * ipmitool as the deployer will run it: lanplus with cipher suite 3
 * (without -C 3 every call first spends ~10 s failing to list cipher
 * suites), the password from the environment (-E), never -P.
 */
export async function ipmitool(bmc: { address: string; port: number; netns?: Netns }, credentialsFile: string, args: string[], timeoutMs = 20_000) {
  const creds = readCredentials(credentialsFile);
  const argv = ["ipmitool", "-I", "lanplus", "-C", "3", "-H", bmc.address, "-p", String(bmc.port), "-U", creds.username, "-E", ...args];
  const [cmd, ...rest] = bmc.netns ? bmc.netns.wrap(argv[0]!, argv.slice(1)) : argv;
  const r = await execa(cmd!, rest, { env: { IPMI_PASSWORD: creds.password }, reject: false, timeout: timeoutMs, stdin: "ignore" });
  const stderr = String(r.stderr).trim() + (r.timedOut ? `ipmitool timed out after ${timeoutMs / 1000} s` : "");
  return { code: r.exitCode ?? -1, stdout: String(r.stdout).trim(), stderr };
}
