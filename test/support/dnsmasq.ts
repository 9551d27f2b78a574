import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Netns } from "./netns.ts";

/**
 * Debian's dnsmasq as the provisioning network's DHCP and TFTP server, run
 * inside the test's namespace on the bridge only. What each option is for
 * was found by booting OVMF and SeaBIOS machines against it (see the
 * comments beside them); the deployer's own dnsmasq wants the same.
 */
export interface DnsmasqOptions {
  /** Run folder: config, log, leases, pid. */
  dir: string;
  /** The bridge and its address: dnsmasq binds there and nowhere else. */
  interface: string;
  address: string;
  /** Machines that may boot; every other MAC is ignored. */
  hosts: { mac: string; ip: string; name: string }[];
  tftpRoot: string;
  /** What iPXE fetches once it runs (any firmware): its script, by HTTP. */
  ipxeScriptUrl: string;
  /** What a UEFI firmware's own PXE fetches by TFTP (default snponly.efi: iPXE on the firmware's NIC driver). */
  uefiBootFile?: string;
  /** What a BIOS PXE ROM that is not iPXE fetches by TFTP (default undionly.kpxe). */
  biosBootFile?: string;
  /** For UEFI HTTP boot clients (vendor class HTTPClient): one EFI executable by URL. */
  httpBootUrl?: string;
}

export function dnsmasqConfig(o: DnsmasqOptions): string {
  const subnet = o.address.replace(/\.\d+$/, ".0");
  return [
    "# no DNS: only DHCP and TFTP",
    "port=0",
    `interface=${o.interface}`,
    "bind-interfaces",
    "except-interface=lo",
    "no-resolv",
    "no-hosts",
    // A static range: addresses only for the MACs listed below; the rest are ignored.
    `dhcp-range=${subnet},static,255.255.255.0,10m`,
    ...o.hosts.map((h) => `dhcp-host=${h.mac},${h.ip},${h.name}`),
    "dhcp-ignore=tag:!known",
    // No router option: a machine gets no default route, so nothing tries to leave.
    "dhcp-option=option:router",
    // DHCP option 93, client architecture: 7 and 9 are x86-64 UEFI, 0 BIOS.
    "dhcp-match=set:efi64,option:client-arch,7",
    "dhcp-match=set:efi64,option:client-arch,9",
    "dhcp-vendorclass=set:httpboot,HTTPClient",
    // iPXE says who it is in its user class: it gets its script, not iPXE again (no chainload loop).
    "dhcp-userclass=set:ipxe,iPXE",
    // iPXE's "no-pxedhcp" setting (option 175.176): do not wait ~3 s for ProxyDHCP offers.
    "dhcp-option=tag:ipxe,encap:175,176,1",
    `dhcp-boot=tag:ipxe,${o.ipxeScriptUrl}`,
    ...(o.httpBootUrl
      ? [
          `dhcp-boot=tag:httpboot,${o.httpBootUrl}`,
          // UEFI HTTP boot takes an offer only if it names itself HTTPClient.
          "dhcp-option-force=tag:httpboot,60,HTTPClient",
        ]
      : []),
    `dhcp-boot=tag:!ipxe,tag:!httpboot,tag:efi64,${o.uefiBootFile ?? "snponly.efi"}`,
    `dhcp-boot=tag:!ipxe,tag:!httpboot,tag:!efi64,${o.biosBootFile ?? "undionly.kpxe"}`,
    // iPXE (2019, Debian's) waits for IPv6 router advertisements before it
    // fetches anything: ~13 s with none on the link. A router advertisement
    // with a lifetime of 0 (no default route) on a private prefix ends that wait.
    "enable-ra",
    `dhcp-range=${ULA_PREFIX}::,ra-only`,
    `ra-param=${o.interface},0,0`,
    "enable-tftp",
    `tftp-root=${o.tftpRoot}`,
    `dhcp-leasefile=${join(o.dir, "leases")}`,
    `pid-file=${join(o.dir, "dnsmasq.pid")}`,
    "log-dhcp",
    `log-facility=${join(o.dir, "dnsmasq.log")}`,
    "",
  ].join("\n");
}

/** The private IPv6 prefix router advertisements name (the bridge needs an address in it). */
export const ULA_PREFIX = "fd77";

export interface Dnsmasq {
  log: string;
  /** The dnsmasq log so far. */
  logText(): string;
  stop(): Promise<void>;
}

export async function startDnsmasq(netns: Netns, o: DnsmasqOptions): Promise<Dnsmasq> {
  const conf = join(o.dir, "dnsmasq.conf");
  writeFileSync(conf, dnsmasqConfig(o));
  await netns.run("ip", ["addr", "replace", `${ULA_PREFIX}::1/64`, "dev", o.interface]);
  const log = join(o.dir, "dnsmasq.log");
  writeFileSync(log, "");
  const p = netns.spawn("dnsmasq", [`--conf-file=${conf}`, "--keep-in-foreground"], { stdout: join(o.dir, "dnsmasq.out") });
  const logText = () => readFileSync(log, "utf8");
  for (const deadline = Date.now() + 5000; !logText().includes("TFTP root is"); await Bun.sleep(20)) {
    if (p.exitCode !== null || Date.now() > deadline)
      throw new Error(`dnsmasq did not start:\n${readFileSync(join(o.dir, "dnsmasq.out"), "utf8")}${logText()}`);
  }
  return {
    log,
    logText,
    async stop() {
      p.kill();
      await p.exited;
    },
  };
}

/**
 * Ask for a DHCP lease as `mac` from inside the namespace, with busybox's
 * udhcpc on a veth port of the bridge: the lease's address, or undefined
 * when no server answered within `tries` seconds. No VM needed.
 */
export async function dhcpProbe(netns: Netns, o: { dir: string; bridge: string; mac: string; tries?: number }): Promise<string | undefined> {
  const script = join(o.dir, "udhcpc-probe.sh");
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "lease $ip"\nexit 0\n', { mode: 0o755 });
  const [port, peer] = ["probe0", "probe0p"];
  await netns.run("ip", ["link", "add", port, "address", o.mac, "type", "veth", "peer", "name", peer]);
  try {
    await netns.run("ip", ["link", "set", peer, "master", o.bridge, "up"]);
    await netns.run("ip", ["link", "set", port, "up"]);
    const p = Bun.spawnSync(netns.wrap("/bin/busybox", ["udhcpc", "-i", port, "-f", "-q", "-n", "-t", String(o.tries ?? 3), "-T", "1", "-s", script]), {
      stdin: "ignore",
    });
    return /^lease (\S+)$/m.exec(p.stdout.toString())?.[1];
  } finally {
    await netns.run("ip", ["link", "del", port]).catch(() => {});
  }
}
