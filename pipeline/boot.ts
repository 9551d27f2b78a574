import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { run } from "../lib/run.ts";
import { chooseAccel, type Accel } from "../lib/qemu/accel.ts";
import { Vm, VmError, type VmOptions } from "../lib/qemu/vm.ts";
import { DISK, slotCmdline } from "../wire/boot.ts";
import { ManifestV1, type Manifest } from "../wire/manifest.ts";
import { READY_MARKER, ReadyReport } from "../wire/ready-report.ts";
import { BootFailed, UntestableBuild } from "./errors.ts";

/** A built image, found from its -o path, manifest, or one of its artifacts. */
export interface BuiltImage {
  base: string;
  manifest: Manifest;
  disk: { file: string; format: "raw" | "qcow2" };
  kernel?: { vmlinuz: string; initrd: string };
}

const KNOWN_EXTENSIONS = [".manifest.json", ".raw", ".qcow2", ".tar", ".rootfs", ".vmlinuz", ".initrd"];

export function findImage(image: string): BuiltImage {
  let base = resolve(image);
  for (const ext of KNOWN_EXTENSIONS) if (base.endsWith(ext)) base = base.slice(0, -ext.length);
  const manifestPath = `${base}.manifest.json`;
  if (!existsSync(manifestPath)) throw new UntestableBuild(image, `no manifest at ${manifestPath}`);
  let manifest: Manifest;
  try {
    manifest = ManifestV1.parse(JSON.parse(readFileSync(manifestPath, "utf8")));
  } catch (e) {
    throw new UntestableBuild(image, `${manifestPath} is not a valid manifest: ${(e as Error).message.split("\n")[0]}`);
  }
  const file = (type: string) => {
    const a = manifest.artifacts.find((x) => x.type === type);
    return a ? join(dirname(base), a.file) : undefined;
  };
  const raw = file("raw");
  const qcow2 = file("qcow2");
  const diskFile = raw ?? qcow2;
  if (!diskFile || !existsSync(diskFile))
    throw new UntestableBuild(image, "the build made no disk image; build it with -t raw or -t qcow2");
  const vmlinuz = file("vmlinuz");
  const initrd = file("initrd");
  return {
    base,
    manifest,
    disk: { file: diskFile, format: raw ? "raw" : "qcow2" },
    kernel: vmlinuz && initrd && existsSync(vmlinuz) && existsSync(initrd) ? { vmlinuz, initrd } : undefined,
  };
}

/**
 * How a test boots an image: `direct` hands qemu the kernel and initrd (no
 * bootloader, SeaBIOS); `bios` and `uefi` boot the disk through its own GRUB,
 * under SeaBIOS and under OVMF.
 */
export const BOOT_PATHS = ["direct", "bios", "uefi"] as const;
export type BootPath = (typeof BOOT_PATHS)[number];

/** The kernel command line of a direct boot of slot A, as GRUB would give it, plus extras. */
export function directCmdline(manifest: Manifest, extra: string[] = []): string {
  const boot = manifest.boot;
  if (!boot) throw new UntestableBuild(manifest.name, "the manifest has no boot section (no disk image was built)");
  const partuuid = boot.partUuids[DISK.rootA.name];
  return [slotCmdline({ partuuid: String(partuuid), slot: "A", trial: false }), boot.kernelCmdline, ...extra].join(" ");
}

/** A copy-on-write disk over the image, so tests never change the built file. */
export async function overlayDisk(image: BuiltImage, dir: string): Promise<{ file: string; format: "qcow2" }> {
  const file = join(dir, `${basename(image.base)}.overlay.qcow2`);
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "-F", image.disk.format, "-b", image.disk.file, file], {
    what: "creating the overlay disk",
  });
  return { file, format: "qcow2" };
}

export interface BootedNode {
  vm: Vm;
  report: ReadyReport;
  /** Seconds from power-on (qemu start) to the ready line. */
  seconds: number;
}

export function tempRunDir(prefix = "ooo-vm-") {
  // Unix socket paths are limited to 108 bytes: keep run folders short.
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Power on and wait for the node's ready line. The caller kills the VM. */
export async function bootAndWait(options: {
  image: BuiltImage;
  mode: BootPath;
  disk: { file: string; format: "raw" | "qcow2" };
  runDir: string;
  consoleLog: string;
  accel?: "auto" | Accel;
  timeoutSeconds?: number;
  debugChannel?: boolean;
  extraCmdline?: string[];
  cpus?: number;
  memoryMiB?: number;
  extraDisks?: VmOptions["extraDisks"];
  guestForwards?: VmOptions["guestForwards"];
}): Promise<BootedNode> {
  const { image, mode } = options;
  if (mode === "direct" && !image.kernel) throw new UntestableBuild(image.base, "no NAME.vmlinuz/NAME.initrd beside the image");
  const accel = await chooseAccel(options.accel ?? "auto", image.kernel?.vmlinuz);
  const vm = await Vm.start({
    name: `${basename(image.base)}-${mode}`,
    dir: options.runDir,
    disk: options.disk,
    accel,
    firmware: mode === "uefi" ? "uefi" : "bios",
    consoleLog: options.consoleLog,
    cpus: options.cpus ?? 2,
    memoryMiB: options.memoryMiB,
    extraDisks: options.extraDisks,
    guestForwards: options.guestForwards,
    debugChannel: options.debugChannel && mode === "direct",
    kernel:
      mode === "direct"
        ? {
            ...image.kernel!,
            append: directCmdline(image.manifest, [...(options.debugChannel ? ["ooo.debug-channel=1"] : []), ...(options.extraCmdline ?? [])]),
          }
        : undefined,
  });
  try {
    const { match, seconds } = await vm.waitFor(READY_MARKER, (options.timeoutSeconds ?? 120) * 1000);
    const parsed = ReadyReport.safeParse(JSON.parse(match[1]!));
    if (!parsed.success) throw new BootFailed(mode, `unreadable ready line: ${match[1]}`, options.consoleLog);
    return { vm, report: parsed.data, seconds };
  } catch (e) {
    await vm.kill();
    if (e instanceof VmError) throw new BootFailed(mode, e.message, options.consoleLog);
    throw e;
  }
}

/** What a golden node must show once up; each failure is a sentence. */
export function checkReport(report: ReadyReport, manifest: Manifest): string[] {
  const failures: string[] = [];
  if (!report.rootReadOnly) failures.push("/ is not mounted read-only");
  if (!report.state.mounted) failures.push("/mnt/state is not mounted");
  else if (report.state.kind !== "partition") failures.push(`/mnt/state is a ${report.state.kind}, not the state partition`);
  if (!report.state.writable) failures.push("/mnt/state is not writable");
  for (const path of manifest.statePaths) {
    const seen = report.statePaths.find((p) => p.path === path);
    if (!seen) failures.push(`state path ${path} is missing from the node's report`);
    else {
      if (!seen.bind) failures.push(`state path ${path} is not a bind mount from the state partition (source: ${seen.source || "none"})`);
      if (!seen.writable) failures.push(`state path ${path} is not writable`);
    }
  }
  if (report.failedUnits.length) failures.push(`failed units: ${report.failedUnits.join(", ")}`);
  return failures;
}

export function removeRunDir(dir: string) {
  rmSync(dir, { recursive: true, force: true });
}
