import type { Subprocess } from "bun";
import { closeSync, existsSync, openSync, readdirSync } from "node:fs";
import { capture } from "../../lib/run.ts";
import { pidAlive } from "./proc.ts";

/**
 * A provisioning network for test machines: a network namespace the test
 * owns, holding a bridge with a private address and one tap per machine.
 * The namespace has no link to the host and IP forwarding off, so nothing a
 * machine sends can leave it; every namespace can use the same subnet.
 *
 * Names carry the creating process's pid (`ooo-tb-PID-XXXX`): `sweepStaleNetns`
 * removes those whose creator is gone, with every process still inside
 * (qemu, dnsmasq, forwarders), so a crashed test leaves nothing behind.
 */
export const NETNS_PREFIX = "ooo-tb-";
export const BRIDGE = "br0";
export const SUBNET = "10.77.0";
/** The provisioning address of the deployer's side (dnsmasq, boot files, metadata). */
export const BRIDGE_ADDRESS = `${SUBNET}.1`;

export interface Netns {
  readonly name: string;
  readonly bridge: string;
  readonly address: string;
  /** Add a tap on the bridge, for a machine's NIC (qemu opens it by name inside the namespace). */
  addTap(name: string): Promise<string>;
  /** The argv prefix that runs a program inside the namespace. */
  wrap(cmd: string, args: string[]): string[];
  /** Run a short command inside the namespace and return its stdout. */
  run(cmd: string, args: string[]): Promise<string>;
  /** Start a long-running process inside the namespace; `destroy()` ends it. */
  spawn(cmd: string, args: string[], options?: { stdout?: string }): Subprocess;
  /**
   * Serve a host-side server (listening on a unix socket) at `address:port`
   * inside the namespace: a socat forwarder listens there, so a server in
   * the test process answers machines on the bridge.
   */
  exposeUnix(port: number, unixPath: string, address?: string): Promise<void>;
  /**
   * The opposite way: a unix socket on the host that leads to `address:port`
   * inside the namespace, for a host-side client of a service started there.
   */
  reachFromHost(address: string, port: number, unixPath: string): Promise<void>;
  /** Kill every process inside, then delete the namespace (taps and bridge go with it). */
  destroy(): Promise<void>;
}

const ip = (...args: string[]) => capture("ip", args, { what: `ip ${args.join(" ")}` });

export async function createNetns(): Promise<Netns> {
  await sweepStaleNetns();
  const name = `${NETNS_PREFIX}${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  await ip("netns", "add", name);
  const spawned: Subprocess[] = [];
  const wrap = (cmd: string, args: string[]) => ["ip", "netns", "exec", name, cmd, ...args];
  const netns: Netns = {
    name,
    bridge: BRIDGE,
    address: BRIDGE_ADDRESS,
    async addTap(tap) {
      await ip("-n", name, "tuntap", "add", "dev", tap, "mode", "tap");
      await ip("-n", name, "link", "set", tap, "master", BRIDGE, "up");
      return tap;
    },
    wrap,
    run: (cmd, args) => capture("ip", ["netns", "exec", name, cmd, ...args], { what: `${cmd} in ${name}` }),
    spawn(cmd, args, options = {}) {
      const out = options.stdout ? openSync(options.stdout, "a") : "ignore";
      const p = Bun.spawn(wrap(cmd, args), { stdin: "ignore", stdout: out, stderr: out });
      if (typeof out === "number") closeSync(out);
      spawned.push(p);
      return p;
    },
    async exposeUnix(port, unixPath, address = BRIDGE_ADDRESS) {
      netns.spawn("socat", [`TCP-LISTEN:${port},bind=${address},reuseaddr,fork`, `UNIX-CONNECT:${unixPath}`]);
      await waitListening(netns, address, port);
    },
    async reachFromHost(address, port, unixPath) {
      netns.spawn("socat", [`UNIX-LISTEN:${unixPath},fork,unlink-early`, `TCP:${address}:${port}`]);
      for (const deadline = Date.now() + 5000; !existsSync(unixPath); await Bun.sleep(20))
        if (Date.now() > deadline) throw new Error(`forwarder to ${address}:${port} in ${name} did not start`);
    },
    async destroy() {
      for (const p of spawned) p.kill("SIGKILL");
      await removeNetns(name);
    },
  };
  try {
    await ip("-n", name, "link", "set", "lo", "up");
    await ip("-n", name, "link", "add", BRIDGE, "type", "bridge");
    // No STP and no forward delay: a tap that a firmware just opened must
    // pass DHCP at once, not after 15 s of listening and learning.
    await ip("-n", name, "link", "set", BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0");
    await ip("-n", name, "addr", "add", `${BRIDGE_ADDRESS}/24`, "dev", BRIDGE);
    await ip("-n", name, "link", "set", BRIDGE, "up");
    // A fresh namespace starts with forwarding off; say so, as it is what keeps machines in.
    await netns.run("sysctl", ["-q", "-w", "net.ipv4.ip_forward=0"]);
  } catch (e) {
    await netns.destroy();
    throw e;
  }
  return netns;
}

async function waitListening(netns: Netns, address: string, port: number) {
  const want = `${address}:${port}`;
  for (const deadline = Date.now() + 5000; ; await Bun.sleep(20)) {
    const out = await netns.run("ss", ["-Htln"]);
    if (out.split("\n").some((l) => l.split(/\s+/).includes(want))) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${want} in ${netns.name}`);
  }
}

async function removeNetns(name: string) {
  // Twice: a process may fork (socat) while the first round is killed.
  for (let round = 0; round < 2; round++) {
    const pids = (await ip("netns", "pids", name).catch(() => "")).split("\n").filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {}
    }
    if (!pids.length) break;
    await Bun.sleep(50);
  }
  await ip("netns", "del", name).catch(() => {});
}

/** Remove test namespaces whose creating process has exited. */
export async function sweepStaleNetns() {
  if (!existsSync("/run/netns")) return;
  for (const name of readdirSync("/run/netns")) {
    const m = new RegExp(`^${NETNS_PREFIX}(\\d+)-`).exec(name);
    if (m && !pidAlive(Number(m[1]))) await removeNetns(name);
  }
}
