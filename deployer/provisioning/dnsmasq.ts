import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { log } from "../../lib/log.ts";
import { daemonPid, startDaemon, stopDaemon, type Daemon } from "../daemons.ts";
import { ProvisioningUnusable } from "../errors.ts";
import type { StackProvisioning } from "../stack.ts";

/**
 * Debian's dnsmasq as the provisioning network's DHCP and TFTP server: a
 * daemon of the state folder (pidfile, log), started again whenever its
 * configuration changes. It answers only the inventory's MACs and only on
 * the provisioning interface, and gives no router. What each option is for
 * was found by booting OVMF and SeaBIOS machines against it
 * (test/support/dnsmasq.ts):
 *
 *   firmware PXE, UEFI (client arch 7, 9) → snponly.efi by TFTP (iPXE on the firmware's NIC driver)
 *   firmware PXE, BIOS                    → undionly.kpxe by TFTP
 *   iPXE (user class iPXE; a NIC's iPXE ROM as well) → http://ADDRESS:HTTP/boot/ipxe (boot-routes.ts)
 *
 * The TFTP root is Debian's /usr/lib/ipxe itself: public files, nothing of
 * the stack's, readable by the user dnsmasq drops to.
 */
export const TFTP_ROOT = "/usr/lib/ipxe";
export const TFTP_FILES = { uefi: "snponly.efi", bios: "undionly.kpxe" };

export interface DnsmasqConfigInput {
  provisioning: StackProvisioning;
  macs: string[];
  /** The interface's network (proxy mode) and whether it has an IPv6 prefix to advertise. */
  network?: string;
  ipv6?: boolean;
  leaseFile: string;
}

/** The range's `i`-th address; a range too small for the inventory's MACs is refused. */
export function addressInRange(range: readonly [string, string], i: number, needed: number): string {
  const n = (ip: string) => ip.split(".").reduce((a, b) => a * 256 + Number(b), 0);
  const size = n(range[1]) - n(range[0]) + 1;
  if (needed > size)
    throw new ProvisioningUnusable(`dhcp.range ${range[0]}-${range[1]} holds ${size} addresses; the inventory lists ${needed} MACs`, "Widen the range: every listed MAC gets an address of its own.");
  const v = n(range[0]) + i;
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
}

export function dnsmasqConfig(o: DnsmasqConfigInput): string {
  const p = o.provisioning;
  const range = "range" in p.dhcp ? p.dhcp.range : undefined;
  const proxy = !range;
  const bootUrl = `http://${p.address}:${p.ports.http}/boot/ipxe`;
  return [
    "# ooo: the provisioning network's DHCP and TFTP (written by ooo deploy; changes are overwritten)",
    "port=0", // no DNS
    `interface=${p.interface}`,
    "bind-interfaces",
    "except-interface=lo",
    "no-resolv",
    "no-hosts",
    range ? `dhcp-range=${range[0]},${range[1]},10m` : `dhcp-range=${o.network ?? p.address},proxy`,
    // Only the inventory's machines: every other MAC is ignored. With a range, each MAC has its own address
    // (the range's first, second, …, in inventory order): dnsmasq offers addresses it does not reserve, and two
    // machines asking at once were offered the same one — the one that lost was refused and booted nothing.
    // id:* — one address per machine whatever client-id its firmware, iPXE or its OS sends.
    ...o.macs.map((mac, i) => (range ? `dhcp-host=${mac},id:*,set:ooo,${addressInRange(range, i, o.macs.length)}` : `dhcp-host=${mac},set:ooo`)),
    "dhcp-ignore=tag:!known",
    // No router option: a machine gets no default route, so nothing tries to leave.
    ...(proxy ? [] : ["dhcp-option=option:router"]),
    // DHCP option 93, client architecture: 7 and 9 are x86-64 UEFI, 0 BIOS.
    "dhcp-match=set:efi64,option:client-arch,7",
    "dhcp-match=set:efi64,option:client-arch,9",
    // iPXE names itself in its user class: it gets its script, not iPXE again (no chainload loop).
    "dhcp-userclass=set:ipxe,iPXE",
    // iPXE's no-pxedhcp (175.176): do not wait ~3 s for ProxyDHCP offers that will not come.
    ...(proxy ? [] : ["dhcp-option=tag:ipxe,encap:175,176,1"]),
    `dhcp-boot=tag:ipxe,${bootUrl}`,
    ...(proxy
      ? [
          // Beside another DHCP server the firmware's PXE is answered as a PXE boot server.
          `pxe-service=tag:!ipxe,x86PC,"ooo",${TFTP_FILES.bios}`,
          `pxe-service=tag:!ipxe,X86-64_EFI,"ooo",${TFTP_FILES.uefi}`,
          `pxe-service=tag:!ipxe,BC_EFI,"ooo",${TFTP_FILES.uefi}`,
        ]
      : [`dhcp-boot=tag:!ipxe,tag:efi64,${TFTP_FILES.uefi}`, `dhcp-boot=tag:!ipxe,tag:!efi64,${TFTP_FILES.bios}`]),
    // Debian's iPXE (2019) waits ~13 s for IPv6 router advertisements before it fetches anything; an
    // advertisement with a router lifetime of 0 (no default route) ends that wait. Only where the
    // interface has an IPv6 prefix to advertise.
    ...(o.ipv6 ? ["enable-ra", `dhcp-range=::,constructor:${p.interface},ra-only`, `ra-param=${p.interface},0,0`] : []),
    "enable-tftp",
    `tftp-root=${TFTP_ROOT}`,
    `dhcp-leasefile=${o.leaseFile}`,
    "log-dhcp",
    "log-facility=-",
    "",
  ].join("\n");
}

/** The interface's IPv4 network (for proxy DHCP) and whether it has a global or unique-local IPv6 address. */
export async function interfaceFacts(name: string): Promise<{ exists: boolean; network?: string; ipv6: boolean; addresses: string[] }> {
  const r = await execa("ip", ["-j", "addr", "show", "dev", name], { reject: false });
  if (r.exitCode !== 0) return { exists: false, ipv6: false, addresses: [] };
  const links = JSON.parse(String(r.stdout)) as { addr_info?: { family: string; local: string; prefixlen: number; scope: string }[] }[];
  const addrs = links.flatMap((l) => l.addr_info ?? []);
  const v4 = addrs.find((a) => a.family === "inet");
  return {
    exists: true,
    network: v4 && networkOf(v4.local, v4.prefixlen),
    ipv6: addrs.some((a) => a.family === "inet6" && a.scope === "global"),
    addresses: addrs.filter((a) => a.family === "inet").map((a) => a.local),
  };
}

function networkOf(ip: string, prefix: number): string {
  const n = ip.split(".").reduce((acc, o) => (acc << 8) | Number(o), 0) >>> 0;
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  const net = (n & mask) >>> 0;
  return [24, 16, 8, 0].map((s) => (net >>> s) & 255).join(".");
}

export function dnsmasqFiles(stateDir: string) {
  const dir = join(stateDir, "provisioning");
  return {
    dir,
    config: join(dir, "dnsmasq.conf"),
    leases: join(dir, "dnsmasq.leases"),
    daemon: { name: "dnsmasq (provisioning DHCP and TFTP)", pidFile: join(dir, "dnsmasq.pid"), logFile: join(dir, "dnsmasq.log"), match: ["dnsmasq", join(dir, "dnsmasq.conf")] } as Daemon,
  };
}

/** dnsmasq running with `config`: left alone when it already is, (re)started otherwise. */
export async function ensureDnsmasq(stateDir: string, config: string): Promise<void> {
  const f = dnsmasqFiles(stateDir);
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  const running = daemonPid(f.daemon);
  if (running !== undefined && existsSync(f.config) && readFileSync(f.config, "utf8") === config) return;
  if (running !== undefined) await stopDaemon(f.daemon);
  writeFileSync(f.config, config);
  await log.step("start dnsmasq on the provisioning network", async () => {
    const from = existsSync(f.daemon.logFile) ? readFileSync(f.daemon.logFile).length : 0;
    const started = () => readFileSync(f.daemon.logFile).subarray(from).toString().includes("TFTP root is");
    await startDaemon(f.daemon, ["dnsmasq", "--keep-in-foreground", `--conf-file=${f.config}`], { ready: async () => started(), timeoutMs: 15_000 });
  });
}

export const stopDnsmasq = (stateDir: string) => stopDaemon(dnsmasqFiles(stateDir).daemon);
