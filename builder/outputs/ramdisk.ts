import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { MissingRequirement } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { run } from "../../lib/run.ts";
import { RamdiskIncomplete } from "../errors.ts";
import { resolveInRoot } from "./in-root.ts";
import { clampMtimes, writeInitramfs, type SegmentInfo } from "./ramdisk/cpio.ts";
import { filteredIndex, readModuleIndex, selectModules } from "./ramdisk/modules.ts";
import { listedWords, RamdiskTree } from "./ramdisk/tree.ts";
import type { OutputType } from "./types.ts";
import type { OutputWork } from "./work.ts";

/**
 * `-t ramdisk`: NAME.vmlinuz and NAME.initramfs, a ramdisk made of what the
 * elements ask for rather than the whole root (as DIB's ramdisk elements):
 *   ramdisk-modules.d/*  kernel modules to load at boot (one name a line),
 *                        with what modules.dep and their soft dependencies add
 *   binary-deps.d/*      programs, with their loader and libraries (DIB's convention)
 *   ramdisk-files/       files copied as they are (scripts, configuration)
 *   init.d/*             /init, the files joined in name order (the first starts with #!)
 * /etc/ramdisk-modules lists the modules /init should load by name, in
 * order; /etc/ramdisk-modules-pci the PCI drivers among the listed ones,
 * which /init loads only for the PCI devices the machine has (by their
 * modaliases, as udev's coldplug: loading each of a server NIC and RAID
 * driver list took 2.3 s of a TCG guest's boot).
 */
export const RAMDISK_MODULE_LIST = "etc/ramdisk-modules";
export const RAMDISK_PCI_MODULE_LIST = "etc/ramdisk-modules-pci";
/** What a deploy ramdisk should stay within (issue 26: Ironic's agent ramdisks are several hundred MiB). */
export const RAMDISK_TARGET_BYTES = 64 * 2 ** 20;
/** zstd level of the initramfs; OOO_RAMDISK_ZSTD_LEVEL trades size for build time (3: seconds, 19: minutes, cached). */
const ZSTD_LEVEL = Number(process.env.OOO_RAMDISK_ZSTD_LEVEL ?? 19);

/** Build-host programs the ramdisk is made with, and their Debian packages. */
const HOST_TOOLS = { cpio: "cpio", zstd: "zstd", readelf: "binutils", mknod: "coreutils" };

const MiB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

export const ramdiskOutput: OutputType = {
  name: "ramdisk",
  description: "a ramdisk: NAME.vmlinuz + NAME.initramfs with what the elements list (ramdisk-modules.d, binary-deps.d, init.d)",
  files: ["vmlinuz", "initramfs"],
  async produce(work) {
    const r = await ramdisk(work);
    const kernel = await work.emit("vmlinuz", "vmlinuz", r.vmlinuz);
    const initramfs = await work.emit("initramfs", "initramfs", r.initramfs);
    const total = kernel.size + initramfs.size;
    log.info(`ramdisk: vmlinuz ${MiB(kernel.size)} + initramfs ${MiB(initramfs.size)} = ${MiB(total)} (target ≤ ${MiB(RAMDISK_TARGET_BYTES)})`);
    log.info(`  uncompressed: ${[...r.contents].map(([what, n]) => `${what} ${MiB(n)}`).join(", ")}`);
    for (const [i, s] of r.segments.entries())
      log.info(`  archive ${i + 1}: ${s.entries} entries, ${MiB(s.cpioBytes)} → ${MiB(s.bytes)} (zstd -${ZSTD_LEVEL}${s.cached ? ", from the cache" : ""})`);
    if (total > RAMDISK_TARGET_BYTES) log.warn(`the ramdisk is ${MiB(total)}, over its ${MiB(RAMDISK_TARGET_BYTES)} target`);
  },
};

interface Ramdisk {
  vmlinuz: string;
  initramfs: string;
  contents: Map<string, number>;
  segments: SegmentInfo[];
}

function ramdisk(work: OutputWork): Promise<Ramdisk> {
  return work.once("assemble the ramdisk", async () => {
    const missing = Object.entries(HOST_TOOLS).filter(([tool]) => !Bun.which(tool));
    if (missing.length) throw new MissingRequirement(`${missing.map(([t]) => t).join(", ")} (for -t ramdisk)`, `apt-get install ${missing.map(([, p]) => p).join(" ")}`);
    if (!work.hooks) throw new RamdiskIncomplete("its element data", "is not available to this build (no hooks tree)");
    const root = work.root;
    const kernel = resolveInRoot(root, "vmlinuz") ?? resolveInRoot(root, "boot/vmlinuz");
    if (!kernel) throw new RamdiskIncomplete("a kernel", "is not in the root (no /vmlinuz): include an operating system element with a kernel");
    const version = /vmlinuz-(.+)$/.exec(kernel)?.[1];
    const modulesDir = version ? resolveInRoot(root, `lib/modules/${version}`) : undefined;
    if (!version || !modulesDir) throw new RamdiskIncomplete(`the kernel's modules`, `(/lib/modules/${version ?? "?"} for /${kernel}) are not in the root`);

    const dir = work.scratchPath("ramdisk-tree");
    rmSync(dir, { recursive: true, force: true });
    const tree = new RamdiskTree(root, dir);
    tree.mirrorTopLevelLinks();
    for (const d of ["dev", "proc", "sys", "run", "mnt", "etc", "var/log"]) tree.mkdir(d);
    tree.mkdir("root", 0o700);
    tree.mkdir("tmp", 0o1777);
    // The kernel opens /dev/console for /init before anything is mounted.
    await run("mknod", ["-m", "600", join(dir, "dev/console"), "c", "5", "1"], { what: "making /dev/console", echo: false });

    await log.step("kernel modules", async () => {
      const index = readModuleIndex(join(root, modulesDir));
      const selection = selectModules(index, listedWords(join(work.hooks!, "ramdisk-modules.d")));
      for (const f of selection.files) tree.copyFromRoot(`${modulesDir}/${f}`, "modules");
      for (const [name, text] of Object.entries(filteredIndex(join(root, modulesDir), selection.files))) tree.write(`${modulesDir}/${name}`, text, 0o644, "modules");
      tree.write(RAMDISK_MODULE_LIST, selection.byName.join("\n") + "\n", 0o644);
      tree.write(RAMDISK_PCI_MODULE_LIST, selection.pci.join("\n") + "\n", 0o644);
      log.info(`${selection.byName.length} modules to load, ${selection.pci.length} PCI drivers for the devices present, ${selection.files.length} files (kernel ${version})`);
      if (selection.builtin.length) log.info(`built into the kernel: ${selection.builtin.join(" ")}`);
      if (selection.missing.length) log.warn(`not in kernel ${version}, left out: ${selection.missing.join(" ")}`);
    });
    await log.step("programs and libraries", async () => {
      const placed = await tree.addPrograms(listedWords(join(work.hooks!, "binary-deps.d")), work.options.arch);
      log.info(`programs: ${placed.map((p) => `/${p}`).join(" ")}`);
    });
    const files = join(work.hooks, "ramdisk-files");
    if (existsSync(files)) await run("cp", ["-a", "--no-preserve=ownership", `${files}/.`, dir], { what: "copying ramdisk-files", echo: false });
    const init = initScript(work.hooks);
    if (!init.startsWith("#!")) throw new RamdiskIncomplete("/init", "is missing: no element has init.d/ files starting with #!");
    tree.write("init", init, 0o755);

    tree.settleFolderModes();
    clampMtimes(tree, work.options.sourceDateEpoch);
    const initramfs = work.scratchPath("initramfs");
    const segments = await writeInitramfs({ tree, out: initramfs, scratch: work.scratch, cacheDir: join(work.options.imageCache, "ooo-ramdisk-archives"), level: ZSTD_LEVEL });
    return { vmlinuz: join(root, kernel), initramfs, contents: tree.bytes, segments };
  });
}

/** init.d/*, joined in name order (DIB's ramdisk builds its /init from init.d fragments too). */
function initScript(hooks: string): string {
  const dir = join(hooks, "init.d");
  if (!existsSync(dir)) return "";
  return readdirSync(dir)
    .sort()
    .map((f) => readFileSync(join(dir, f), "utf8").replace(/\n*$/, "\n"))
    .join("");
}
