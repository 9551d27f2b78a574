import { createHash } from "node:crypto";

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
