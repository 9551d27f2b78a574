#!/usr/bin/env bun
/**
 * Measures every way of booting the marker ramdisk over the network that
 * works with Debian bookworm's binaries, on the test bed: one machine at a
 * time, powered on through its BMC (ipmitool), timed from the power-on to
 * the kernel's first console line and to the initramfs's /init.
 *
 *   bun test/support/netboot-methods.ts [RUNS] [METHOD...]
 *
 * Needs root, the test bed's packages, and for the UKI methods Debian's
 * systemd-boot-efi (its EFI stub) and binutils (objcopy).
 */
import { copyFileSync, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { ipmitool } from "./bmc-ipmi.ts";
import { startDnsmasq, type DnsmasqOptions } from "./dnsmasq.ts";
import { kernelArgs, KERNEL_FIRST_LINE, MARKER, markerPayload, type NetbootPayload } from "./marker-ramdisk.ts";
import { startNetboot } from "./netboot.ts";
import { createTestbed, type TestMachineSpec } from "./testbed.ts";

interface Method {
  machine: Omit<TestMachineSpec, "name">;
  /** What a UEFI firmware's own PXE gets by TFTP. */
  uefiBootFile?: string;
  /** For UEFI HTTP boot: the path of the one EFI executable. */
  httpBoot?: string;
  note: string;
}

const METHODS: Record<string, Method> = {
  "bios-ipxe-rom": { machine: { firmware: "bios", netboot: "ipxe" }, note: "SeaBIOS + qemu's iPXE ROM → boot.ipxe, kernel, initrd by HTTP" },
  "uefi-ipxe-rom": { machine: { firmware: "uefi", netboot: "ipxe" }, note: "OVMF runs qemu's iPXE EFI ROM → boot.ipxe by HTTP" },
  "uefi-pxe-snponly": { machine: { firmware: "uefi", netboot: "pxe" }, uefiBootFile: "snponly.efi", note: "OVMF PXE → snponly.efi (TFTP) → iPXE → HTTP" },
  "uefi-pxe-ipxe": { machine: { firmware: "uefi", netboot: "pxe" }, uefiBootFile: "ipxe.efi", note: "OVMF PXE → ipxe.efi (TFTP) → iPXE → HTTP" },
  "uefi-pxe-grub": { machine: { firmware: "uefi", netboot: "pxe" }, uefiBootFile: "grubnetx64.efi", note: "OVMF PXE → grubnetx64.efi (TFTP) → grub.cfg, http.mod (TFTP) → kernel, initrd by HTTP" },
  "uefi-pxe-uki": { machine: { firmware: "uefi", netboot: "pxe" }, uefiBootFile: "marker.efi", note: "OVMF PXE → kernel+initrd as one EFI executable by TFTP" },
  "uefi-http-uki": { machine: { firmware: "uefi", netboot: "http" }, httpBoot: "/marker.efi", note: "OVMF HTTP boot → kernel+initrd as one EFI executable by HTTP" },
};

/** Kernel, initrd and command line as one EFI executable, on systemd's EFI stub (a UKI). */
async function buildUki(p: NetbootPayload, cmdline: string, out: string) {
  const stub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
  if (!existsSync(stub)) throw new Error("the UKI methods need systemd-boot-efi: apt-get install systemd-boot-efi");
  writeFileSync(`${out}.cmdline`, cmdline);
  writeFileSync(`${out}.osrel`, "ID=ooo\nNAME=ooo test bed marker\n");
  // Sections placed after the stub's own; the initrd after the kernel, 1 MiB aligned.
  const linuxAt = 0x2000000;
  const initrdAt = linuxAt + Math.ceil(statSync(p.kernel).size / 0x100000) * 0x100000;
  const sections: [string, string, number][] = [
    [".osrel", `${out}.osrel`, 0x20000],
    [".cmdline", `${out}.cmdline`, 0x30000],
    [".linux", p.kernel, linuxAt],
    [".initrd", p.initrd, initrdAt],
  ];
  await execa("objcopy", [...sections.flatMap(([n, f, at]) => ["--add-section", `${n}=${f}`, "--change-section-vma", `${n}=0x${at.toString(16)}`]), stub, out]);
}

/** GRUB's network image reads (tftp,SERVER)/grub/grub.cfg and loads http.mod (not in the image) from beside it. */
function grubFiles(tftpRoot: string, httpHostPort: string, reportUrl: string) {
  copyFileSync("/usr/lib/grub/x86_64-efi/monolithic/grubnetx64.efi", join(tftpRoot, "grubnetx64.efi"));
  mkdirSync(join(tftpRoot, "grub/x86_64-efi"), { recursive: true });
  copyFileSync("/usr/lib/grub/x86_64-efi/http.mod", join(tftpRoot, "grub/x86_64-efi/http.mod"));
  writeFileSync(
    join(tftpRoot, "grub/grub.cfg"),
    ["set timeout=0", `linux (http,${httpHostPort})/vmlinuz ${kernelArgs(reportUrl)}`, `initrd (http,${httpHostPort})/initrd`, "boot", ""].join("\n"),
  );
}

async function measure(name: string, m: Method, payload: NetbootPayload) {
  const bed = await createTestbed({ machines: [{ name: "m0", memoryMiB: 512, ...m.machine }] });
  try {
    const machine = bed.machines[0]!;
    const uki = join(bed.dir, "marker.efi");
    const boot = await startNetboot(bed.netns, { dir: bed.dir, payload, files: { "/marker.efi": uki } });
    if (m.uefiBootFile === "marker.efi" || m.httpBoot) {
      await buildUki(payload, kernelArgs(`${boot.url}/report`), uki);
      copyFileSync(uki, join(boot.tftpRoot, "marker.efi"));
    }
    if (m.uefiBootFile === "grubnetx64.efi") grubFiles(boot.tftpRoot, boot.url.replace("http://", ""), `${boot.url}/report`);
    const options: DnsmasqOptions = {
      dir: bed.dir,
      interface: bed.netns.bridge,
      address: bed.netns.address,
      hosts: [{ mac: machine.mac, ip: machine.ip, name: machine.name }],
      tftpRoot: boot.tftpRoot,
      ipxeScriptUrl: `${boot.url}/boot.ipxe`,
      uefiBootFile: m.uefiBootFile,
      httpBootUrl: m.httpBoot && `${boot.url}${m.httpBoot}`,
    };
    const dnsmasq = await startDnsmasq(bed.netns, options);
    try {
      const t0 = Date.now();
      const on = await ipmitool(machine.ipmi, bed.credentials, ["chassis", "bootdev", "pxe"]);
      const r = await ipmitool(machine.ipmi, bed.credentials, ["power", "on"]);
      if (on.code || r.code) throw new Error(`ipmitool: ${on.stderr} ${r.stderr}`);
      const kernel = await machine.waitConsole(KERNEL_FIRST_LINE, 240_000);
      const init = await machine.waitConsole(new RegExp(MARKER.init), 120_000, kernel.end);
      await machine.waitConsole(new RegExp(MARKER.done), 60_000, init.end);
      return { kernel: (kernel.at - t0) / 1000, init: (init.at - t0) / 1000 };
    } finally {
      await dnsmasq.stop();
      await boot.stop();
    }
  } finally {
    await bed.destroy();
  }
}

const runs = Number(process.argv[2] ?? 1);
const wanted = process.argv.slice(3).length ? process.argv.slice(3) : Object.keys(METHODS);
const payload = await markerPayload();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const name of wanted) {
  const m = METHODS[name];
  if (!m) throw new Error(`no method ${name}; known: ${Object.keys(METHODS).join(", ")}`);
  const results: { kernel: number; init: number }[] = [];
  for (let i = 0; i < runs; i++) {
    try {
      results.push(await measure(name, m, payload));
    } catch (e) {
      console.log(`${name}: failed: ${(e as Error).message.split("\n").slice(0, 12).join("\n  ")}`);
      break;
    }
  }
  if (results.length)
    console.log(
      `${name.padEnd(18)} kernel ${median(results.map((r) => r.kernel)).toFixed(1)} s, /init ${median(results.map((r) => r.init)).toFixed(1)} s` +
        ` (runs: ${results.map((r) => `${r.kernel.toFixed(1)}/${r.init.toFixed(1)}`).join(" ")}) — ${m.note}`,
    );
}
process.exit(0);
