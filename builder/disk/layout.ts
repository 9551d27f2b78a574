import { ImageTooSmall } from "../errors.ts";

/**
 * The golden disk: GPT with
 *   1 bios-boot   1 MiB   GRUB's core image (SeaBIOS boots it)
 *   2 ooo-boot   16 MiB   ext2: grub.cfg and the environment block that picks the slot
 *   3 ooo-root-a  slot    the root, read-only on the node
 *   4 ooo-root-b  slot    empty: an in-place upgrade writes the next root here
 *   5 ooo-state   rest    precious data, never written by an upgrade
 * Partition numbers are fixed: the bootloader and the upgrade agent rely on them.
 */
export const MiB = 2 ** 20;
export const SECTOR = 512;

export const PARTITION_TYPES = {
  biosBoot: "21686148-6449-6E6F-744E-656564454649",
  xbootldr: "BC13C2FF-59E6-4262-A352-B275FD6F7172",
  rootX86_64: "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
  linuxData: "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
} as const;

export interface Partition {
  number: number;
  name: "bios-boot" | "ooo-boot" | "ooo-root-a" | "ooo-root-b" | "ooo-state";
  type: string;
  offset: number;
  size: number;
}

export interface DiskLayout {
  size: number;
  slotSize: number;
  partitions: Partition[];
}

const BIOS_BOOT = 1 * MiB;
const BOOT = 16 * MiB;
const DEFAULT_STATE = 512 * MiB;
const MIN_STATE = 64 * MiB;
/** Alignment start and the backup GPT at the end. */
const HEAD = 1 * MiB;
const TAIL = 1 * MiB;

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

/** The least a slot can be for a root of `rootBytes` (ext4 metadata, journal). */
export function minimumSlot(rootBytes: number): number {
  return roundUp(rootBytes * 1.15 + 48 * MiB, 4 * MiB);
}

/** Slots leave room for bigger roots in later upgrades. */
export function defaultSlot(rootBytes: number): number {
  return roundUp(Math.max(rootBytes * 1.5, rootBytes + 256 * MiB), 64 * MiB);
}

export function planDisk(rootBytes: number, imageSizeBytes?: number): DiskLayout {
  const fixed = HEAD + BIOS_BOOT + BOOT + TAIL;
  let slot = defaultSlot(rootBytes);
  let state = DEFAULT_STATE;
  if (imageSizeBytes !== undefined) {
    const total = Math.floor(imageSizeBytes / MiB) * MiB;
    const minSlot = minimumSlot(rootBytes);
    const needed = fixed + 2 * minSlot + MIN_STATE;
    if (total < needed) throw new ImageTooSmall(needed, imageSizeBytes);
    slot = Math.max(minSlot, Math.min(slot, Math.floor((total - fixed - MIN_STATE) / 2 / (4 * MiB)) * 4 * MiB));
    state = total - fixed - 2 * slot;
  }
  const parts: Omit<Partition, "offset">[] = [
    { number: 1, name: "bios-boot", type: PARTITION_TYPES.biosBoot, size: BIOS_BOOT },
    { number: 2, name: "ooo-boot", type: PARTITION_TYPES.xbootldr, size: BOOT },
    { number: 3, name: "ooo-root-a", type: PARTITION_TYPES.rootX86_64, size: slot },
    { number: 4, name: "ooo-root-b", type: PARTITION_TYPES.rootX86_64, size: slot },
    { number: 5, name: "ooo-state", type: PARTITION_TYPES.linuxData, size: state },
  ];
  let offset = HEAD;
  const partitions = parts.map((p) => {
    const placed = { ...p, offset };
    offset += p.size;
    return placed;
  });
  return { size: offset + TAIL, slotSize: slot, partitions };
}

export function partition(layout: DiskLayout, name: Partition["name"]): Partition {
  return layout.partitions.find((p) => p.name === name)!;
}
