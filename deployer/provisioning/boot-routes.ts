import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { caFingerprint, normaliseMac, RAMDISK_CMDLINE } from "../../wire/deploy.ts";
import { Machines, type MachineRow } from "../bare-metal/machines.ts";
import { driverFor } from "../drivers/index.ts";
import { embeddedIronicFiles } from "../ironic/embedded.ts";
import { stackTls } from "../stack-tls.ts";
import type { StackProvisioning } from "../stack.ts";
import type { StateDb } from "../state.ts";

/**
 * The boot files, over plain http on the provisioning address (firmware
 * and iPXE speak no TLS with a private CA): what dnsmasq points iPXE at,
 * and what that loads.
 *
 *   GET /boot/ipxe                  one script for every machine: chain to its own, by MAC
 *   GET /boot/ipxe/<aa-bb-…>        the machine's: the deploy ramdisk while the deployer has it in
 *                                   the ramdisk, else `exit` (the firmware boots the next device: its disk)
 *   GET /boot/ramdisk/<sha256>/<vmlinuz|initramfs>   the ramdisk's files, by content
 *   GET /boot/ca.pem                the stack's CA certificate: the ramdisk checks it against the
 *                                   sha256 on its command line, then speaks https to the metadata service
 *   GET /ironic/<path>              the embedded Ironic's boot files (its httpboot/, its [deploy] http_url):
 *                                   its iPXE scripts and its copies of the deploy ramdisk
 *
 * A machine the embedded Ironic is booting (it wrote a script for its MAC)
 * gets Ironic's script from /boot/ipxe/<mac>, unless ooo has it in its own
 * ramdisk: one dnsmasq and one chain serve both.
 *
 * Nothing secret is served here: tokens and config drives travel over the
 * metadata service's https, to a ramdisk that pinned its CA.
 */
export const RamdiskFiles = z.object({
  name: z.string(),
  digest: z.string(),
  kernel: z.object({ path: z.string(), sha256: z.string() }),
  initramfs: z.object({ path: z.string(), sha256: z.string() }),
});
export type RamdiskFiles = z.infer<typeof RamdiskFiles>;

export const ramdiskFilesPath = (stateDir: string) => join(stateDir, "provisioning", "ramdisk.json");

function ramdiskFiles(stateDir: string): RamdiskFiles | undefined {
  const file = ramdiskFilesPath(stateDir);
  return existsSync(file) ? RamdiskFiles.parse(JSON.parse(readFileSync(file, "utf8"))) : undefined;
}

// Plain text with its length: iPXE (and GRUB's http) want a Content-Length.
const text = (body: string, status = 200) => new Response(body, { status, headers: { "content-type": "text/plain", "cache-control": "no-store" } });

/** The script iPXE gets from DHCP: the same for all, so it chains to the one for the MAC it booted from. */
export function chainScript(base: string): string {
  return ["#!ipxe", `chain ${base}/boot/ipxe/\${mac:hexhyp} || goto failed`, "exit", ":failed", "echo ooo: no boot script for ${mac}; booting the next device", "exit", ""].join("\n");
}

/** A machine not in the ramdisk: leave it to the firmware's next boot device (its disk). */
export const LOCAL_BOOT_SCRIPT = ["#!ipxe", "echo ooo: this machine boots from its disk", "exit", ""].join("\n");

/**
 * The deploy ramdisk for one machine. `initrd=` names the initramfs for a
 * UEFI kernel's EFI stub (Debian's iPXE hands it over only so; a BIOS
 * kernel ignores the word).
 */
export function ramdiskScript(o: { base: string; files: RamdiskFiles; mac: string; console: string; metadataUrl: string; ca?: { sha256: string; url: string } }): string {
  const dir = (f: { sha256: string }, name: string) => `${o.base}/boot/ramdisk/${f.sha256}/${name}`;
  const args = [
    "initrd=initramfs",
    "console=tty0",
    `console=${o.console}`,
    `${RAMDISK_CMDLINE.metadataUrl}=${o.metadataUrl}`,
    ...(o.ca ? [`${RAMDISK_CMDLINE.caSha256}=${o.ca.sha256}`, `${RAMDISK_CMDLINE.caUrl}=${o.ca.url}`] : []),
    `${RAMDISK_CMDLINE.bootMac}=01-${o.mac.replaceAll(":", "-")}`,
  ];
  return [
    "#!ipxe",
    `echo ooo: deploy ramdisk ${o.files.name} for ${o.mac}`,
    `kernel ${dir(o.files.kernel, "vmlinuz")} ${args.join(" ")}`,
    `initrd --name initramfs ${dir(o.files.initramfs, "initramfs")}`,
    "boot",
    "",
  ].join("\n");
}

function consoleOf(m: MachineRow): string {
  try {
    return driverFor(m.driver).bareMetal?.machines(m.config as never)[m.name]?.console ?? "ttyS0,115200n8";
  } catch {
    return "ttyS0,115200n8";
  }
}

export function bootRoutes({ db, provisioning }: { db: StateDb; provisioning: StackProvisioning }) {
  const machines = new Machines(db);
  const base = `http://${provisioning.address}:${provisioning.ports.http}`;
  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") return text("GET only\n", 405);
    if (url.pathname === "/boot/ipxe") return text(chainScript(base));
    const tls = stackTls(db.dir);
    if (url.pathname === "/boot/ca.pem") return tls ? new Response(tls.caPem, { headers: { "content-type": "application/x-pem-file" } }) : text("this stack speaks plain http\n", 404);
    const perMac = /^\/boot\/ipxe\/([0-9a-fA-F-]{17})$/.exec(url.pathname);
    if (perMac) {
      const mac = normaliseMac(perMac[1]!);
      const m = mac ? machines.byMac([mac]) : undefined;
      if (!mac) return text(LOCAL_BOOT_SCRIPT);
      const files = ramdiskFiles(db.dir);
      if (m?.state !== "ramdisk" || !files) {
        const ironic = ironicFile(db.dir, `${mac}.conf`);
        return text(ironic ? readFileSync(ironic, "utf8") : LOCAL_BOOT_SCRIPT);
      }
      const scheme = tls ? "https" : "http";
      return text(
        ramdiskScript({
          base,
          files,
          mac,
          console: consoleOf(m),
          metadataUrl: `${scheme}://${provisioning.address}:${provisioning.ports.metadata}`,
          ...(tls ? { ca: { sha256: caFingerprint(tls.caPem), url: `${base}/boot/ca.pem` } } : {}),
        }),
      );
    }
    const file = /^\/boot\/ramdisk\/([0-9a-f]{64})\/(vmlinuz|initramfs)$/.exec(url.pathname);
    if (file) {
      const files = ramdiskFiles(db.dir);
      const f = files && (file[2] === "vmlinuz" ? files.kernel : files.initramfs);
      if (!f || f.sha256 !== file[1] || !existsSync(f.path)) return text("no such ramdisk file\n", 404);
      return new Response(Bun.file(f.path), { headers: { "content-type": "application/octet-stream" } });
    }
    if (url.pathname.startsWith("/ironic/")) {
      const f = ironicFile(db.dir, decodeURIComponent(url.pathname.slice("/ironic/".length)));
      return f ? new Response(Bun.file(f), { headers: { "content-type": "application/octet-stream" } }) : text("no such file\n", 404);
    }
    return text("not found\n", 404);
  };
}

/** A file of the embedded Ironic's httpboot/ (its links followed, but never out of it). */
function ironicFile(stateDir: string, rel: string): string | undefined {
  try {
    const root = realpathSync(embeddedIronicFiles(stateDir).httpRoot);
    const path = realpathSync(join(root, rel));
    return path.startsWith(`${root}/`) && statSync(path).isFile() ? path : undefined;
  } catch {
    return undefined;
  }
}
