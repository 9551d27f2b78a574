import { MiB, PARTITIONS, type PartitionRole, type PartitionSpec } from "../../wire/boot.ts";
import { ImageTooSmall } from "../errors.ts";

/**
 * Where each partition of the golden disk (wire/boot.ts: DISK) goes: fixed
 * sizes as the contract gives them, the two root slots sized for the root,
 * the state partition taking the rest.
 */
export const SECTOR = 512;

export interface Partition extends PartitionSpec {
  role: PartitionRole;
  offset: number;
  size: number;
}

export interface DiskLayout {
  size: number;
  slotSize: number;
  partitions: Partition[];
}

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
  const count = (size: PartitionSpec["size"]) => PARTITIONS.filter((p) => p.size === size).length;
  const slots = count("slot");
  if (count("rest") !== 1) throw new Error("bug: the disk contract (wire/boot.ts) must give the rest of the disk to one partition");
  const fixed = HEAD + TAIL + PARTITIONS.reduce((a, p) => a + (typeof p.size === "number" ? p.size : 0), 0);
  let slot = defaultSlot(rootBytes);
  let rest = DEFAULT_STATE;
  if (imageSizeBytes !== undefined) {
    const total = Math.floor(imageSizeBytes / MiB) * MiB;
    const minSlot = minimumSlot(rootBytes);
    const needed = fixed + slots * minSlot + MIN_STATE;
    if (total < needed) throw new ImageTooSmall(needed, imageSizeBytes);
    slot = Math.max(minSlot, Math.min(slot, Math.floor((total - fixed - MIN_STATE) / slots / (4 * MiB)) * 4 * MiB));
    rest = total - fixed - slots * slot;
  }
  let offset = HEAD;
  const partitions = PARTITIONS.map((p) => {
    const size = p.size === "slot" ? slot : p.size === "rest" ? rest : p.size;
    const placed = { ...p, offset, size };
    offset += size;
    return placed;
  });
  return { size: offset + TAIL, slotSize: slot, partitions };
}

export function partition(layout: DiskLayout, role: PartitionRole): Partition {
  return layout.partitions.find((p) => p.role === role)!;
}
