import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { run } from "../../lib/run.ts";
import { canonicalTar } from "../../lib/tar/canonical.ts";
import { BOOT_FILES, DISK, grubConfig, initialEnv, renderEnv, SLOT_RECORD_BYTES, SLOTS } from "../../wire/boot.ts";
import { installGrubBios, makeGrubEfi } from "../disk/grub.ts";
import { writePartitionTable } from "../disk/gpt.ts";
import { minimumSlot, partition, planDisk, type DiskLayout } from "../disk/layout.ts";
import { mkfsFor, writeInto } from "../disk/mkfs.ts";
import { fsUuid, uuidFor } from "../disk/uuid.ts";
import { resolveInRoot } from "./in-root.ts";
import type { OutputWork } from "./work.ts";

/**
 * The intermediate steps outputs share. Order of dependence:
 *   canonical tar → extracted tree → root filesystem → whole disk
 * The tree a filesystem is made from is always a fresh extraction of the
 * canonical tar, never the build root itself: files are created in sorted
 * order with clamped times, so mkfs writes the same bytes every build — and
 * a node that rebuilds a root from the same tar gets the same tree.
 */

/** Kernel arguments every boot of an ooo disk gets (the slot adds root= and ooo.slot=). */
export const KERNEL_CMDLINE = "console=tty0 console=ttyS0,115200 panic=10 quiet";

export interface Canonical {
  file: string;
  sha256: string;
  size: number;
  digest: string;
}

export function canonical(work: OutputWork): Promise<Canonical> {
  return work.once("canonical root tar", async () => {
    const file = work.scratchPath("root.tar");
    const hash = createHash("sha256");
    let size = 0;
    const fd = openSync(file, "w");
    try {
      for await (const chunk of canonicalTar(work.root, { sourceDateEpoch: work.options.sourceDateEpoch })) {
        hash.update(chunk);
        writeSync(fd, chunk);
        size += chunk.length;
      }
    } finally {
      closeSync(fd);
    }
    const sha256 = hash.digest("hex");
    return { file, sha256, size, digest: `sha256:${sha256}` };
  });
}

export function tree(work: OutputWork): Promise<string> {
  return work.once("extract canonical tree", async () => {
    const { file } = await canonical(work);
    const dir = work.scratchPath("tree");
    mkdirSync(dir, { recursive: true });
    await run("tar", ["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", file, "-C", dir], {
      what: "extracting the canonical root",
    });
    return dir;
  });
}

export function layout(work: OutputWork): Promise<DiskLayout> {
  return work.once("plan disk layout", async () => {
    const { size } = await canonical(work);
    const size_gb = work.options.imageSize;
    return planDisk(size, size_gb === undefined ? undefined : Math.floor(size_gb * 1024 ** 3));
  });
}

/** The root filesystem's label (hooks see it as DIB_ROOT_LABEL). */
export const ROOT_FS_LABEL = DISK.rootA.label!;

/** The root filesystem, alone, sized as one root slot. */
export function rootfs(work: OutputWork): Promise<string> {
  return work.once("make root filesystem (ext4)", async () => {
    const [dir, plan, c] = await Promise.all([tree(work), layout(work), canonical(work)]);
    const file = work.scratchPath("rootfs.ext4");
    await mkfsFor(DISK.rootA, {
      file,
      size: plan.slotSize,
      uuid: uuidFor(c.digest, "fs-root"),
      tree: dir,
      sourceDateEpoch: work.options.sourceDateEpoch,
      neededBytes: minimumSlot(c.size),
    });
    return file;
  });
}

/** The whole golden disk: GPT, GRUB for BIOS and UEFI, boot partition (the ESP), root slot A, empty slot B, state. */
export function disk(work: OutputWork): Promise<string> {
  return work.once("assemble disk image", async () => {
    const [plan, c, fs] = await Promise.all([layout(work), canonical(work), rootfs(work)]);
    const file = work.scratchPath("disk.raw");
    closeSync(openSync(file, "w"));
    await run("truncate", ["-s", String(plan.size), file]);
    await writePartitionTable(file, plan, c.digest);

    await writeInto(file, fs, partition(plan, "rootA").offset);

    const boot = partition(plan, "boot");
    const bootFsUuid = fsUuid(DISK.boot.fs, c.digest, "fs-boot");
    const bootFs = work.scratchPath("boot.fs");
    await mkfsFor(DISK.boot, { file: bootFs, size: boot.size, uuid: bootFsUuid, tree: await bootTree(work, c.digest, bootFsUuid), sourceDateEpoch: work.options.sourceDateEpoch });
    await writeInto(file, bootFs, boot.offset);

    const state = partition(plan, "state");
    const stateFs = work.scratchPath("state.fs");
    await mkfsFor(DISK.state, { file: stateFs, size: state.size, uuid: uuidFor(c.digest, "fs-state"), sourceDateEpoch: work.options.sourceDateEpoch });
    await writeInto(file, stateFs, state.offset);

    await installGrubBios({ file, biosBoot: partition(plan, "biosBoot"), bootFsUuid, scratch: work.scratch });
    return file;
  });
}

/**
 * What the boot partition holds (wire/boot.ts: BOOT_FILES): GRUB's EFI
 * binary, grub.cfg, the environment block naming the image slot A holds
 * (the upgrade agent compares it), and the slot records at their full size
 * (the node rewrites them in place, never creates them).
 */
async function bootTree(work: OutputWork, digest: string, bootFsUuid: string): Promise<string> {
  const tree = work.scratchPath("boot-tree");
  const put = async (path: string, data: string | Buffer) => {
    mkdirSync(join(tree, path, ".."), { recursive: true });
    await Bun.write(join(tree, path), data);
  };
  mkdirSync(join(tree, BOOT_FILES.efiBinary, ".."), { recursive: true });
  await makeGrubEfi({ out: join(tree, BOOT_FILES.efiBinary), bootFsUuid, scratch: work.scratch });
  await put(BOOT_FILES.grubConfig, grubConfig(KERNEL_CMDLINE));
  await put(BOOT_FILES.env, Buffer.from(renderEnv(initialEnv(digest)), "latin1"));
  for (const slot of SLOTS) await put(BOOT_FILES.slotRecord(slot), Buffer.alloc(SLOT_RECORD_BYTES));
  return tree;
}

/** The kernel and initrd of the root, for direct (bootloader-less) boots. */
export function bootFiles(work: OutputWork): Promise<{ vmlinuz: string; initrd: string } | undefined> {
  return work.once("find kernel and initrd", async () => {
    const dir = await tree(work);
    const find = (names: string[]) => {
      for (const n of names) {
        const rel = resolveInRoot(dir, n);
        if (rel !== undefined) return join(dir, rel);
      }
      return undefined;
    };
    const vmlinuz = find(["vmlinuz", "boot/vmlinuz"]);
    const initrd = find(["initrd.img", "boot/initrd.img"]);
    return vmlinuz && initrd ? { vmlinuz, initrd } : undefined;
  });
}
