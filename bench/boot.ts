#!/usr/bin/env bun
/**
 * Power-on-to-ready of the default golden image under qemu, median of 3
 * boots, for both boot paths (kernel+initrd directly, and the disk's own
 * GRUB), side by side with a reference: the same Debian root without ooo's
 * layer (no read-only root, no state layout), booted directly to its login
 * prompt. Target (TCG, this machine): under 20 s.
 *
 *   bun bench/boot.ts [--runs 3] [--accel tcg|kvm|auto]
 *
 * Prints a table, then one JSON object of the figures as its last line.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { DEFAULT_IMAGE } from "../builder/defaults.ts";
import { table } from "../lib/log.ts";
import { chooseAccel } from "../lib/qemu/accel.ts";
import { Vm } from "../lib/qemu/vm.ts";
import { bootAndWait, findImage, overlayDisk, removeRunDir, tempRunDir, type BootMode } from "../pipeline/boot.ts";
import { DISK } from "../wire/boot.ts";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

process.stderr.write("building the default image and the reference root (cached after the first time)...\n");
const image = await build("default", DEFAULT_IMAGE.elements);
const reference = await build("reference", ["debian-minimal"]);
const accel = await chooseAccel(flag("accel", "tcg") as "auto" | "tcg" | "kvm", image.kernel?.vmlinuz);

const results: Record<string, number[]> = { direct: [], disk: [], reference: [] };
for (let i = 0; i < runs; i++) {
  for (const mode of ["direct", "disk"] as BootMode[]) {
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

const figures = {
  accel,
  runs,
  direct_median_s: Number(median(results.direct!).toFixed(2)),
  disk_median_s: Number(median(results.disk!).toFixed(2)),
  reference_median_s: Number(median(results.reference!).toFixed(2)),
  direct_vs_reference: Number((median(results.direct!) / median(results.reference!)).toFixed(2)),
  target_s: 20,
  direct_s: results.direct!.map((s) => Number(s.toFixed(2))),
  disk_s: results.disk!.map((s) => Number(s.toFixed(2))),
  reference_s: results.reference!.map((s) => Number(s.toFixed(2))),
};
console.log(
  table(
    ["boot", "median (s)", "runs (s)", "target"],
    [
      ["ooo golden, direct kernel+initrd → OOO-READY", figures.direct_median_s, figures.direct_s.join(" "), "< 20 s"],
      ["ooo golden, disk via GRUB → OOO-READY", figures.disk_median_s, figures.disk_s.join(" "), "< 20 s"],
      ["reference: plain debian-minimal rw, direct → login:", figures.reference_median_s, figures.reference_s.join(" "), ""],
    ],
  ),
);
console.log(`accel: ${accel}; golden/reference (direct): ${figures.direct_vs_reference}`);
console.log(JSON.stringify(figures));
