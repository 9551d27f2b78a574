#!/usr/bin/env bun
/**
 * Power-on-to-ready of the default golden image under qemu, median of 3
 * boots, for every boot path (kernel+initrd directly; the disk's own GRUB
 * under legacy BIOS, SeaBIOS; and under UEFI, OVMF), in one run, side by
 * side with a reference: the same Debian root without ooo's layer (no
 * read-only root, no state layout), booted directly to its login prompt.
 * Target (TCG, this machine): under 20 s.
 *
 *   bun bench/boot.ts [--runs 3] [--accel tcg|kvm|auto]
 *
 * Prints a table, then one JSON object of the figures as its last line.
 *
 * What UEFI costs under TCG: OVMF takes about 4 s of CPU from power-on to
 * GRUB, SeaBIOS about 0.5 s (qemu's CPU time, measured at GRUB's first
 * line: the last two rows, from boots stopped there). Its wall time is that CPU time on an idle host, and grows with
 * the host's load (20-30 s to GRUB at a load of 14 on 2 cores). Tried, at
 * about the same cost (±10%): OVMF_CODE.fd (2 MiB) instead of _4M, q35
 * instead of pc, 1 vCPU instead of 2, 256 MiB instead of 1 GiB, -boot
 * strict=on, a variable store with the boot entries OVMF made on an earlier
 * boot (BDS itself takes ~0.05 s: the time is the firmware's platform
 * start). Already out of the way: no iPXE option ROM (romfile=), no VGA.
 * KVM, where it works, takes the emulation away.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { DEFAULT_IMAGE } from "../builder/defaults.ts";
import { table } from "../lib/log.ts";
import { chooseAccel } from "../lib/qemu/accel.ts";
import { Vm } from "../lib/qemu/vm.ts";
import { bootAndWait, findImage, overlayDisk, removeRunDir, tempRunDir, type BootPath, BOOT_PATHS } from "../pipeline/boot.ts";
import { DISK } from "../wire/boot.ts";
import { flag, median } from "./figures.ts";

const runs = Number(flag("runs", "3"));
const repo = resolve(import.meta.dir, "..");
const outDir = join(repo, "out/bench-boot");
mkdirSync(outDir, { recursive: true });

async function build(name: string, elements: string[]) {
  const base = join(outDir, name);
  const r = await execa("bun", [join(repo, "cli/ooo.ts"), "build-image", "-o", base, "--force", "-t", "raw", ...elements], { reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`building ${name} failed:\n${String(r.all).split("\n").slice(-20).join("\n")}`);
  return findImage(base);
}


process.stderr.write("building the default image and the reference root (cached after the first time)...\n");
const image = await build("default", DEFAULT_IMAGE.elements);
const reference = await build("reference", ["debian-minimal"]);
const accel = await chooseAccel(flag("accel", "tcg") as "auto" | "tcg" | "kvm", image.kernel?.vmlinuz);

/**
 * The firmware's own share, which the host's load does not blur: qemu's
 * CPU time (user + system) from power-on to GRUB's first line, and the wall
 * time to it. A boot of its own, stopped at that line.
 */
const TICKS = 100; // USER_HZ, what /proc/PID/stat counts in
async function toGrub(firmware: "bios" | "uefi") {
  const runDir = tempRunDir();
  try {
    const disk = await overlayDisk(image, runDir);
    const vm = await Vm.start({ name: `to-grub-${firmware}`, dir: runDir, disk, accel, cpus: 2, firmware });
    try {
      const { seconds } = await vm.waitFor(/ooo: booting slot/, 180_000);
      const fields = readFileSync(`/proc/${vm.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      return { seconds, cpu: (Number(fields[11]) + Number(fields[12])) / TICKS };
    } finally {
      await vm.kill();
    }
  } finally {
    removeRunDir(runDir);
  }
}

const results: Record<BootPath | "reference", number[]> = { direct: [], bios: [], uefi: [], reference: [] };
const grub = { bios: { cpu: [] as number[], wall: [] as number[] }, uefi: { cpu: [] as number[], wall: [] as number[] } };
for (let i = 0; i < runs; i++) {
  for (const firmware of ["bios", "uefi"] as const) {
    const r = await toGrub(firmware);
    grub[firmware].cpu.push(r.cpu);
    grub[firmware].wall.push(r.seconds);
  }
  for (const mode of BOOT_PATHS) {
    const runDir = tempRunDir();
    try {
      const disk = await overlayDisk(image, runDir);
      const node = await bootAndWait({ image, mode, disk, runDir, consoleLog: join(runDir, "console.log"), accel, timeoutSeconds: 180 });
      results[mode]!.push(node.seconds);
      await node.vm.kill();
    } finally {
      removeRunDir(runDir);
    }
  }
  const runDir = tempRunDir();
  try {
    const disk = await overlayDisk(reference, runDir);
    const root = reference.manifest.boot!.partUuids[DISK.rootA.name];
    const vm = await Vm.start({
      name: "reference",
      dir: runDir,
      disk,
      accel,
      cpus: 2,
      kernel: { ...reference.kernel!, append: `root=PARTUUID=${root} rw ${reference.manifest.boot!.kernelCmdline}` },
    });
    const { seconds } = await vm.waitFor(/login: /, 180_000);
    results.reference!.push(seconds);
    await vm.kill();
  } finally {
    removeRunDir(runDir);
  }
}

const med = (xs: number[]) => Number(median(xs).toFixed(2));
const runsOf = (xs: number[]) => xs.map((s) => Number(s.toFixed(2)));
const figures = {
  accel,
  runs,
  direct_median_s: med(results.direct),
  bios_median_s: med(results.bios),
  uefi_median_s: med(results.uefi),
  reference_median_s: med(results.reference),
  direct_vs_reference: Number((median(results.direct) / median(results.reference)).toFixed(2)),
  uefi_minus_bios_s: Number((median(results.uefi) - median(results.bios)).toFixed(2)),
  to_grub_cpu_bios_s: med(grub.bios.cpu),
  to_grub_cpu_uefi_s: med(grub.uefi.cpu),
  to_grub_bios_s: med(grub.bios.wall),
  to_grub_uefi_s: med(grub.uefi.wall),
  target_s: 20,
  direct_s: runsOf(results.direct),
  bios_s: runsOf(results.bios),
  uefi_s: runsOf(results.uefi),
  reference_s: runsOf(results.reference),
};
console.log(
  table(
    ["boot", "median (s)", "runs (s)", "target"],
    [
      ["ooo golden, direct kernel+initrd → OOO-READY", figures.direct_median_s, figures.direct_s.join(" "), "< 20 s"],
      ["ooo golden, disk via GRUB under BIOS (SeaBIOS) → OOO-READY", figures.bios_median_s, figures.bios_s.join(" "), "< 20 s"],
      ["ooo golden, disk via GRUB under UEFI (OVMF) → OOO-READY", figures.uefi_median_s, figures.uefi_s.join(" "), ""],
      ["reference: plain debian-minimal rw, direct → login:", figures.reference_median_s, figures.reference_s.join(" "), ""],
      ["power-on → GRUB under SeaBIOS (qemu CPU s / wall s)", `${figures.to_grub_cpu_bios_s} / ${figures.to_grub_bios_s}`, runsOf(grub.bios.cpu).join(" "), ""],
      ["power-on → GRUB under OVMF (qemu CPU s / wall s)", `${figures.to_grub_cpu_uefi_s} / ${figures.to_grub_uefi_s}`, runsOf(grub.uefi.cpu).join(" "), ""],
    ],
  ),
);
console.log(`accel: ${accel}; golden/reference (direct): ${figures.direct_vs_reference}; UEFI − BIOS: ${figures.uefi_minus_bios_s} s; load average now ${(await Bun.file("/proc/loadavg").text()).split(" ")[0]}`);
console.log(JSON.stringify(figures));
