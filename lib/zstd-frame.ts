import { createHash } from "node:crypto";

/**
 * A zstd frame's digest and, when it is `digest`, what it decompresses to,
 * which must be `length` bytes; else the frame itself. Nothing is
 * decompressed before its digest is the one a trusted map names (a disk
 * pack's frame: wire/disk-map.ts), so a frame built to decompress to
 * gigabytes never is.
 */
export function unpackFrame(algorithm: string, frame: ArrayBuffer, digest: string, length: number): { digest: string; bytes: ArrayBuffer } {
  const hex = createHash(algorithm).update(new Uint8Array(frame)).digest("hex");
  if (hex !== digest) return { digest: hex, bytes: frame };
  const out = Bun.zstdDecompressSync(new Uint8Array(frame));
  if (out.length !== length) throw new Error(`the frame decompressed to ${out.length} bytes, not the chunk's ${length}`);
  // A Buffer may be a view into a larger pool: only a buffer of its own can move to another thread.
  return { digest: hex, bytes: out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? (out.buffer as ArrayBuffer) : new Uint8Array(out).buffer };
}
