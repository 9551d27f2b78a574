import { statSync, truncateSync } from "node:fs";
import { DISK, GPT_TYPES } from "../wire/boot.ts";
import { capture, run } from "./run.ts";

/**
 * An ooo disk grown to its device: the golden disk is written onto a disk
 * bigger than itself (a node's disk file in the qemu driver, a machine's
 * disk in the deploy ramdisk), and then, as Ironic's agent "fixes the GPT
 * backup" after writing a whole-disk image, the backup GPT moves to the
 * disk's end; the state partition (5, ooo-state, the image's last) takes
 * the new room and its ext4 grows with it. Optionally a partition after it
 * keeps the disk's last bytes (the config drive, as Ironic puts one there).
 * No loop device, no mount: sfdisk edits the table in place (a file or a
 * block device alike) and resize2fs works on the filesystem at its offset.
 * Partitions as the boot contract (wire/boot.ts) has them.
 */
const SECTOR = 512;
const MiB = 2 ** 20;
const STATE_PARTITION = DISK.state;
/** resize2fs below grows ext4; a state partition of another filesystem needs its own tool. */
const STATE_FS: "ext4" = DISK.state.fs;

export interface GptPartition {
  node: string;
  start: number;
  size: number;
  uuid?: string;
  name?: string;
}

export async function gptPartitions(target: string): Promise<GptPartition[]> {
  return (await gptTable(target)).partitions;
}

/** The partitions and the last usable sector: one sfdisk run (each costs a deploy ramdisk ~0.2 s under TCG). */
async function gptTable(target: string): Promise<{ partitions: GptPartition[]; lastlba: number }> {
  const json = JSON.parse(await capture("sfdisk", ["-J", target], { what: `reading the partition table of ${target}` })) as {
    partitiontable: { partitions: GptPartition[]; lastlba: number };
  };
  return json.partitiontable;
}

/** Its number, from sfdisk's node name (/dev/vda5, /dev/nvme0n1p5, disk.raw5). */
export const partitionNumber = (p: GptPartition) => Number(/(\d+)$/.exec(p.node)?.[1]);

export interface GrowOptions {
  /** A partition to add after the state partition, in the disk's last `bytes` (whole MiB). */
  tail?: { name: string; bytes: number };
}

/** Grow `target`'s state partition to its end (less the tail partition). Returns the new table. */
export async function growStatePartition(target: string, options: GrowOptions = {}): Promise<GptPartition[]> {
  const isFile = statSync(target).isFile();
  const sizeBefore = isFile ? statSync(target).size : undefined;
  // A file's table is not the kernel's business; a disk's is re-read after each change.
  const quietKernel = isFile ? ["--no-reread", "--no-tell-kernel"] : [];
  await run("sfdisk", ["-q", "--relocate", "gpt-bak-std", target], { what: "moving the backup GPT to the disk's end", echo: false });
  const table = await gptTable(target);
  const parts = table.partitions;
  const state = parts.find((p) => p.name === STATE_PARTITION.name);
  if (!state || partitionNumber(state) !== STATE_PARTITION.number || parts.at(-1) !== state)
    throw new Error(`the image's last partition is not ${STATE_PARTITION.name} (${STATE_PARTITION.number}): it cannot grow; use the image's own disk size`);
  if (options.tail && options.tail.bytes % MiB) throw new Error(`the ${options.tail.name} partition must be whole MiB, not ${options.tail.bytes} bytes`);
  const tailSectors = (options.tail?.bytes ?? 0) / SECTOR;
  // `+` takes all the room; with a tail, what is left of it, in whole MiB.
  const lastUsable = table.lastlba;
  const stateSize = tailSectors ? Math.floor((lastUsable + 1 - tailSectors - state.start) / (MiB / SECTOR)) * (MiB / SECTOR) : undefined;
  if (stateSize !== undefined && stateSize < state.size) throw new Error(`the disk has no room for a ${options.tail!.name} partition after ${STATE_PARTITION.name}`);
  await run("sfdisk", ["-q", "-N", String(STATE_PARTITION.number), ...quietKernel, target], {
    input: `, ${stateSize ?? "+"}\n`,
    what: "growing the state partition",
    echo: false,
  });
  if (options.tail)
    await run("sfdisk", ["-q", "--append", ...quietKernel, target], {
      input: `size=${tailSectors}, type=${GPT_TYPES.linuxData}, name=${options.tail.name}\n`,
      what: `adding the ${options.tail.name} partition`,
      echo: false,
    });
  const after = await gptPartitions(target);
  const grown = after.find((p) => p.name === STATE_PARTITION.name)!;
  // resize2fs on a file would take the file's whole size: give it the partition's. It also cuts a
  // regular file to the filesystem's size, forgetting the offset: put the disk's size and its
  // backup GPT back afterwards.
  await run("resize2fs", ["-f", `${target}?offset=${grown.start * SECTOR}`, `${Math.floor((grown.size * SECTOR) / 1024)}K`], {
    what: `growing the state filesystem (${STATE_FS})`,
    echo: false,
  });
  if (isFile && statSync(target).size !== sizeBefore) {
    truncateSync(target, sizeBefore);
    await run("sfdisk", ["-q", "--relocate", "gpt-bak-std", target], { what: "writing the backup GPT again", echo: false });
  }
  // resize2fs leaves the table as it was (a file's is written again, the same).
  return after;
}
