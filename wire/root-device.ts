import { SIZE_HINT_RE, type Disk, type RootDeviceHints } from "./deploy.ts";

/**
 * Which disk becomes the root disk: the ramdisk decides with it on the
 * machine, and the deployer with the inventory it was sent, to refuse a
 * deploy that cannot fit before the machine is touched. Ironic's rules:
 * every hint given must match; strings exactly (serial, WWN, model, vendor
 * compared trimmed and case-insensitively, as firmware pads and cases them);
 * size in whole GiB (the disk's size rounded down), exact or by an operator.
 * Of the disks that match and hold the image, the smallest wins (ties: by name).
 */
export type RootDiskChoice = { disk: Disk } | { problem: string };

const GiB = 2 ** 30;
const norm = (s: string | undefined) => s?.trim().toLowerCase();

function sizeMatches(hint: number | string, bytes: number): boolean {
  const gib = Math.floor(bytes / GiB);
  if (typeof hint === "number") return gib === hint;
  const [, op = "==", n] = SIZE_HINT_RE.exec(hint)!;
  const want = Number(n);
  switch (op) {
    case "==":
      return gib === want;
    case "!=":
      return gib !== want;
    case ">=":
      return gib >= want;
    case "<=":
      return gib <= want;
    case ">":
      return gib > want;
    default:
      return gib < want;
  }
}

/** The hints a disk fails, by name (empty: it matches). */
export function hintMisses(disk: Disk, hints: RootDeviceHints = {}): string[] {
  const misses: string[] = [];
  if (hints.size !== undefined && !sizeMatches(hints.size, disk.size)) misses.push("size");
  for (const key of ["serial", "wwn", "model", "vendor"] as const)
    if (hints[key] !== undefined && norm(hints[key]) !== norm(disk[key])) misses.push(key);
  if (hints.by_path !== undefined && hints.by_path !== disk.by_path) misses.push("by_path");
  if (hints.name !== undefined && hints.name.replace(/^\/dev\//, "") !== disk.name) misses.push("name");
  if (hints.rotational !== undefined && hints.rotational !== disk.rotational) misses.push("rotational");
  return misses;
}

const describe = (d: Disk) => `${d.name} (${(d.size / GiB).toFixed(1)} GiB${d.serial ? `, serial ${d.serial.trim()}` : ""}${d.model ? `, ${d.model.trim()}` : ""})`;

export function chooseRootDisk(disks: Disk[], imageBytes: number, hints: RootDeviceHints = {}): RootDiskChoice {
  if (!disks.length) return { problem: "the machine has no disk" };
  const matching = disks.filter((d) => hintMisses(d, hints).length === 0);
  const given = Object.keys(hints).length > 0;
  if (!matching.length)
    return {
      problem: `no disk matches the root device hints ${JSON.stringify(hints)}: ${disks.map((d) => `${describe(d)} differs in ${hintMisses(d, hints).join(", ")}`).join("; ")}`,
    };
  const fitting = matching.filter((d) => d.size >= imageBytes).sort((a, b) => a.size - b.size || a.name.localeCompare(b.name));
  if (!fitting.length)
    return {
      problem: `${given ? "no disk that matches the root device hints" : "no disk"} holds the image (${(imageBytes / GiB).toFixed(2)} GiB): ${matching.map(describe).join(", ")}`,
    };
  return { disk: fitting[0]! };
}

/**
 * The partition the ramdisk adds after the image's own, in the disk's last
 * bytes, for the config drive (Ironic's size and place: it refuses config
 * drives over 64 MiB and puts them in the last 64 MiB).
 */
export const CONFIG_DRIVE_PARTITION_BYTES = 64 * 2 ** 20;

/** What a deploy needs of the root disk: the image and the config drive after it. Pass this to chooseRootDisk on both sides. */
export const deployBytes = (imageBytes: number) => imageBytes + CONFIG_DRIVE_PARTITION_BYTES;
