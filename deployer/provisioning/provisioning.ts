import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { publishAtomically } from "../../lib/atomic.ts";
import { log } from "../../lib/log.ts";
import { Machines } from "../bare-metal/machines.ts";
import { driverFor } from "../drivers/index.ts";
import { RoleImageUnusable } from "../errors.ts";
import { ProvisioningUnusable } from "../errors.ts";
import { resolveRoleImage, type ImageCache } from "../images.ts";
import type { StackStore } from "../services.ts";
import type { Stack, StackProvisioning } from "../stack.ts";
import type { StateDb } from "../state.ts";
import { ramdiskFilesPath, type RamdiskFiles } from "./boot-routes.ts";
import { dnsmasqConfig, dnsmasqFiles, ensureDnsmasq, interfaceFacts, TFTP_FILES, TFTP_ROOT } from "./dnsmasq.ts";

/**
 * The provisioning network's side of a deploy, before any machine is
 * powered: the host has the interface and the address the stack names and
 * the programs it needs; the deploy ramdisk the stack names is in the store
 * (signed, when the stack trusts keys) and its kernel and initramfs are in
 * the cache, verified, where the boot files' server finds them; dnsmasq
 * answers the enrolled machines' MACs. The metadata service and the store
 * listen on the address by themselves (provisioning/settings.ts).
 */
export async function checkProvisioningHost(p: StackProvisioning): Promise<void> {
  const problems: string[] = [];
  if (!Bun.which("dnsmasq")) problems.push("dnsmasq is not installed (apt-get install dnsmasq-base)");
  for (const f of Object.values(TFTP_FILES)) if (!existsSync(`${TFTP_ROOT}/${f}`)) problems.push(`${TFTP_ROOT}/${f} is missing (apt-get install ipxe)`);
  if (process.getuid?.() !== 0) problems.push("serving DHCP and TFTP needs root");
  const facts = await interfaceFacts(p.interface);
  if (!facts.exists) problems.push(`this host has no interface ${p.interface}`);
  else if (!facts.addresses.includes(p.address)) problems.push(`${p.interface} does not have ${p.address} (it has ${facts.addresses.join(", ") || "no IPv4 address"})`);
  if (problems.length) throw new ProvisioningUnusable(problems.join("; "), "Fix the host or the stack's provisioning: settings; nothing was touched.");
}

/** The stack's deploy ramdisk, resolved in the store and its two files cached and verified; where the boot files' server reads them. */
export async function prepareRamdisk(stack: Stack, stateDir: string, store: StackStore, cache: ImageCache): Promise<RamdiskFiles> {
  const ref = stack.provisioning!.ramdisk;
  let image;
  try {
    image = await resolveRoleImage(store.client, "provisioning", ref, { requireDisk: false, trustedKeys: stack.trustedKeys });
  } catch (e) {
    if (e instanceof RoleImageUnusable) throw new ProvisioningUnusable(`ramdisk ${ref}: ${e.message.replace(/^role provisioning: image \S+: /, "")}`, e.hint);
    throw e;
  }
  const art = (type: string) => image.manifest.artifacts.find((a) => a.type === type);
  const kernel = art("vmlinuz");
  const initramfs = art("initramfs");
  if (!kernel || !initramfs) throw new ProvisioningUnusable(`ramdisk ${ref} (${image.name} ${image.digest.slice(0, 19)}…) is no deploy ramdisk: it has no vmlinuz and initramfs`, "Build it with -t ramdisk,tar from element ooo-deploy and publish it.");
  const [kernelPath, initramfsPath] = await log.step(`deploy ramdisk ${image.name} (${((kernel.size + initramfs.size) / 2 ** 20).toFixed(1)} MiB)`, () =>
    Promise.all([cache.ensureBlob(store.client, kernel, "vmlinuz"), cache.ensureBlob(store.client, initramfs, "initramfs")]),
  );
  const files: RamdiskFiles = { name: image.name, digest: image.digest, kernel: { path: kernelPath, sha256: kernel.sha256 }, initramfs: { path: initramfsPath, sha256: initramfs.sha256 } };
  const path = ramdiskFilesPath(stateDir);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  await publishAtomically(path, async (p) => writeFileSync(p, JSON.stringify(files, null, 2) + "\n"));
  return files;
}

/**
 * dnsmasq with the MACs of every machine of the stack: the enrolled ones
 * (any of them may boot into the ramdisk) and those its inventory lists
 * (the embedded Ironic's, which Ironic boots).
 */
export async function ensureProvisioningDhcp(stack: Stack, stateDir: string, db: StateDb): Promise<void> {
  const p = stack.provisioning!;
  const facts = await interfaceFacts(p.interface);
  const listed = Object.values(stack.inventory).flatMap((entry) => Object.values(driverFor(entry.driver).machinesOf?.(entry as never).machines ?? {}).flatMap((m) => m.macs));
  const macs = [...new Set([...new Machines(db).all().flatMap((m) => m.macs), ...listed])].sort();
  await ensureDnsmasq(stateDir, dnsmasqConfig({ provisioning: p, macs, network: facts.network, ipv6: facts.ipv6, leaseFile: dnsmasqFiles(stateDir).leases }));
}
