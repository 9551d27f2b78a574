import { createHash } from "node:crypto";
import type { Filesystem } from "../../wire/boot.ts";

/**
 * UUIDs that depend only on the image's content: `uuidFor(digest, "root-a")`
 * is the same on every rebuild of the same inputs and different for every
 * purpose. Formatted as an RFC 9562 version 8 (custom) UUID.
 */
export function uuidFor(seed: string, purpose: string): string {
  const b = createHash("sha256").update(`ooo-uuid\0${seed}\0${purpose}`).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * A filesystem's UUID as it writes it, and as GRUB's `search --fs-uuid` and
 * blkid read it: ext4's is a UUID; FAT's is its 32-bit volume ID, XXXX-XXXX.
 */
export function fsUuid(fs: Filesystem, seed: string, purpose: string): string {
  const uuid = uuidFor(seed, purpose);
  if (fs !== "vfat") return uuid;
  const id = uuid.slice(0, 8).toUpperCase();
  return `${id.slice(0, 4)}-${id.slice(4)}`;
}
