import { z } from "zod";
import { Sha256Hex } from "./image-ref.ts";

/**
 * The disk map of a raw golden disk (`NAME.disk-map.json`, artifact type
 * `disk-map` in the manifest): where the disk's data is, as chunks that a
 * deploy fetches by HTTP Range from the raw disk's blob and checks one by
 * one; every byte outside the chunks is zero. A golden disk of ~2 GiB holds
 * ~409 MiB of data: with the map, a deploy ramdisk fetches and hashes those,
 * and zeroes the rest on the disk without fetching it.
 *
 * Written by the builder beside the raw disk (builder/outputs/raw.ts), read
 * by the deploy ramdisk (agents/deploy/). Trust runs manifest → map →
 * chunks: the manifest names the map's sha256 like any artifact's (so a
 * signed manifest covers it), and the map names each chunk's digest.
 *
 * Version 2 names the chunks' hash: SHA-512/256 (FIPS 180-4), not sha256.
 * A deploy ramdisk hashes every byte it writes on the machine's own CPU,
 * and SHA-512/256's 64-bit arithmetic is 2.7× sha256's speed where no SHA
 * instructions help: under qemu's TCG (bench/tcg-crypto.ts) and on the
 * many server CPUs without SHA-NI. Version 1 maps (sha256) are read as
 * version 2.
 *
 * The disk pack (`NAME.disk-pack`, artifact type `disk-pack`): every chunk
 * compressed by zstd as one frame, in chunk order, one after the other.
 * When the build wrote one, each chunk names its frame (`packed`: where in
 * the pack, and the frame's digest by the same hash), and a deploy fetches
 * the frames instead of the disk's bytes: a third as many bytes through
 * TLS, which a deploy ramdisk decrypts on the machine's own CPU. A frame is
 * checked against its digest before it is decompressed, so trust runs
 * manifest → map → frame, as for chunks; the builder decompresses every
 * frame once and compares it with its chunk before it writes the map.
 * Readers that do not know `packed` ignore it and fetch the chunks.
 */
export const DISK_MAP_VERSION = 2;
/** The chunk hashes a map may name; builders write CHUNK_HASH. */
export const ChunkHash = z.enum(["sha256", "sha512-256"]).describe("The hash of every chunk's digest (node:crypto's name)");
export type ChunkHash = z.infer<typeof ChunkHash>;
export const CHUNK_HASH: ChunkHash = "sha512-256";
/** The manifest's artifact type of a disk map. */
export const DISK_MAP_ARTIFACT = "disk-map";
/** Largest chunk the format allows: a reader holds a few in memory at once. */
export const MAX_CHUNK_BYTES = 16 * 2 ** 20;

const Bytes = z.number().int().nonnegative();

const Offset = Bytes.describe("Where the chunk starts on the disk, in bytes");
const Length = z.number().int().positive().max(MAX_CHUNK_BYTES).describe("Bytes in the chunk");
/** The manifest's artifact type of a disk pack. */
export const DISK_PACK_ARTIFACT = "disk-pack";
const Digest = z.string().regex(/^[0-9a-f]{64}$/, "256 bits in lowercase hex");
export const PackedFrame = z
  .object({
    offset: Bytes.describe("Where the frame starts in the disk pack, in bytes"),
    length: Length.describe("Bytes in the frame"),
    digest: Digest.describe("The frame's bytes hashed by the map's `hash`"),
  })
  .describe("The chunk compressed: one zstd frame of the disk pack");
export type PackedFrame = z.infer<typeof PackedFrame>;
export const DiskMapChunk = z.object({
  offset: Offset,
  length: Length,
  digest: Digest.describe("The chunk's bytes hashed by the map's `hash`"),
  packed: PackedFrame.optional(),
});
export type DiskMapChunk = z.infer<typeof DiskMapChunk>;

/** Cross-field rules: every problem at once, each at its place. */
type Shape = { disk: { size: number }; chunks: { offset: number; length: number; packed?: { offset: number; length: number } }[] };
function issues(map: Shape): { path: (string | number)[]; message: string }[] {
  const found: { path: (string | number)[]; message: string }[] = [];
  let end = 0;
  let packEnd = 0;
  const packed = map.chunks.filter((c) => c.packed).length;
  map.chunks.forEach((c, i) => {
    if (c.offset < end) found.push({ path: ["chunks", i, "offset"], message: `chunk at ${c.offset} starts before the one before it ends (${end}): chunks are in disk order and do not overlap` });
    if (c.offset + c.length > map.disk.size) found.push({ path: ["chunks", i], message: `chunk ${c.offset}+${c.length} ends past the disk's ${map.disk.size} bytes` });
    end = Math.max(end, c.offset + c.length);
    if (packed > 0 && !c.packed) found.push({ path: ["chunks", i], message: "chunk has no frame where the others have one: a pack holds every chunk or none" });
    if (c.packed) {
      if (c.packed.offset !== packEnd) found.push({ path: ["chunks", i, "packed", "offset"], message: `frame at ${c.packed.offset}, not ${packEnd}: the frames follow one another in chunk order` });
      packEnd = c.packed.offset + c.packed.length;
    }
  });
  return found;
}

const Disk = z
  .object({
    size: Bytes.describe("The raw disk's size in bytes"),
    sha256: Sha256Hex.describe("The raw disk's sha256 (its artifact's in the manifest)"),
  })
  .describe("The raw disk this maps");
const CHUNKS = "The disk's data, in disk order, not overlapping; every byte outside them is zero";

function refine(map: Shape, ctx: z.RefinementCtx) {
  for (const issue of issues(map)) ctx.addIssue({ code: "custom", ...issue });
}

export const DiskMapV2 = z
  .object({
    version: z.literal(DISK_MAP_VERSION).describe("Disk map format version"),
    hash: ChunkHash,
    disk: Disk,
    chunks: z.array(DiskMapChunk).describe(CHUNKS),
  })
  .superRefine(refine)
  .describe("Where a raw disk's data is: chunks with their digests, zeros elsewhere");
export type DiskMap = z.infer<typeof DiskMapV2>;

/** Version 1: every chunk's sha256. */
export const DiskMapV1 = z
  .object({
    version: z.literal(1).describe("Disk map format version"),
    disk: Disk,
    chunks: z.array(z.object({ offset: Offset, length: Length, sha256: Sha256Hex.describe("sha256 of the chunk's bytes") })).describe(CHUNKS),
  })
  .superRefine(refine)
  .describe("Where a raw disk's data is: chunks with their sha256, zeros elsewhere");

/** Parse any known disk map version, translating older ones forward. */
export const DiskMap = z.discriminatedUnion("version", [
  DiskMapV2,
  DiskMapV1.transform(
    (v1): DiskMap => ({ version: DISK_MAP_VERSION, hash: "sha256", disk: v1.disk, chunks: v1.chunks.map((c) => ({ offset: c.offset, length: c.length, digest: c.sha256 })) }),
  ),
]);

/** Bytes the chunks hold: what a deploy writes. */
export function mappedBytes(map: DiskMap): number {
  return map.chunks.reduce((n, c) => n + c.length, 0);
}

/** Bytes of the disk pack the map's frames make up (0: the map has none). */
export function packedBytes(map: DiskMap): number {
  return map.chunks.reduce((n, c) => n + (c.packed?.length ?? 0), 0);
}

/** The [start, end) ranges between the chunks (and after the last): zeros on the disk. */
export function zeroRanges(map: DiskMap): [number, number][] {
  const ranges: [number, number][] = [];
  let at = 0;
  for (const c of map.chunks) {
    if (c.offset > at) ranges.push([at, c.offset]);
    at = c.offset + c.length;
  }
  if (at < map.disk.size) ranges.push([at, map.disk.size]);
  return ranges;
}
