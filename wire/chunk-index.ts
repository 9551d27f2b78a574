import { z } from "zod";
import { SHA256_HEX_RE } from "./digest.ts";
import { Digest, Sha256Hex } from "./image-ref.ts";

/**
 * The chunk index of an image (`GET /v2/images/{id}/chunk-index`): the
 * image's data as an ordered list of content-defined chunks. Written by the
 * publisher, checked and stored by the store, read by the node agents that
 * fetch a new root using the chunks they already have. Defined once, here.
 *
 * Like casync's .caibx, but JSON: the chunker and its parameters (a node must
 * cut its seed exactly as the publisher cut the image, see lib/chunking.ts),
 * then one `[sha256, size]` pair per chunk in stream order. Offsets are the
 * running sum of sizes; a chunk that occurs twice is listed twice.
 *
 * When the stream is a canonical root tar, `entries` lists its tar entries
 * the same way (lib/tar/entries.ts): `[path, bytes, sha256]`, and for a hard
 * link the path it links to as a fourth element. A node compares the entries
 * of the image it runs with those of the next one to learn which files
 * change, and patches a copy of its root with just those
 * (agents/takeover/patch-install.ts). The store checks them against the data
 * like the chunks.
 */

export const ChunkerSpec = z.object({
  algorithm: z.string().describe("Cutting algorithm and version, e.g. gear32-nc2-v1 (lib/chunking.ts)"),
  min: z.number().int().positive().describe("Smallest chunk in bytes (except the last)"),
  avg: z.number().int().positive().describe("Target average chunk size in bytes"),
  max: z.number().int().positive().describe("Largest chunk in bytes"),
});

const ChunkIndexFields = {
  version: z.literal(1).describe("Chunk index format version"),
  digest: Digest.describe("sha256 of the whole stream: the image's content address"),
  size: z.number().int().nonnegative().describe("Bytes in the whole stream"),
  chunker: ChunkerSpec,
};

/** What the sizes must add up to (both the full schema and the fast path check it). */
function sumIssues(index: { size: number; chunker: { max: number }; chunks: [string, number][]; entries?: [string, number, ...string[]][] }) {
  const issues: { path: (string | number)[]; message: string }[] = [];
  let sum = 0;
  for (const [, size] of index.chunks) sum += size;
  if (sum !== index.size) issues.push({ path: ["chunks"], message: `chunk sizes add up to ${sum}, not size ${index.size}` });
  if (index.entries) {
    let bytes = 0;
    for (const [, length] of index.entries) bytes += length;
    // The end-of-archive blocks follow the last entry.
    if (bytes > index.size - 1024) issues.push({ path: ["entries"], message: `entries add up to ${bytes} bytes, more than the stream before its end blocks` });
  }
  const tooBig = index.chunks.findIndex(([, size]) => size > index.chunker.max);
  if (tooBig >= 0) issues.push({ path: ["chunks", tooBig], message: "chunk larger than chunker.max" });
  return issues;
}

/** The format, as documented (JSON Schema) and as errors are reported. */
export const ChunkIndexV1 = z
  .object({
    ...ChunkIndexFields,
    chunks: z
      .array(z.tuple([Sha256Hex, z.number().int().positive()]))
      .describe("[sha256 of the chunk, its size in bytes], in stream order"),
    entries: z
      .array(z.tuple([z.string().min(1), z.number().int().positive(), Sha256Hex]).rest(z.string()))
      .optional()
      .describe("[path, bytes, sha256 of the entry's bytes, hard link target?] per tar entry, in stream order"),
  })
  .superRefine((index, ctx) => {
    for (const issue of sumIssues(index)) ctx.addIssue({ code: "custom", ...issue });
  });

export type ChunkIndex = z.infer<typeof ChunkIndexV1>;

/*
 * The fast path. An index lists thousands of chunks and tar entries, and a
 * node parses two at every upgrade: zod's tuple checks took a node's CPU
 * about a second under emulation (35 ms natively, on the first call). The
 * loops below accept a subset of what ChunkIndexV1 accepts; anything they
 * do not accept goes through ChunkIndexV1 itself, for its exact errors.
 */
const Envelope = z.object({ ...ChunkIndexFields, chunks: z.array(z.unknown()), entries: z.array(z.unknown()).optional() });
const isSize = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v > 0;
const isChunk = (c: unknown) => Array.isArray(c) && c.length === 2 && typeof c[0] === "string" && SHA256_HEX_RE.test(c[0]) && isSize(c[1]);
function isEntry(e: unknown) {
  if (!Array.isArray(e) || e.length < 3 || typeof e[0] !== "string" || e[0].length === 0 || !isSize(e[1]) || typeof e[2] !== "string" || !SHA256_HEX_RE.test(e[2])) return false;
  for (let i = 3; i < e.length; i++) if (typeof e[i] !== "string") return false;
  return true;
}

function fast(value: unknown): ChunkIndex | undefined {
  const envelope = Envelope.safeParse(value);
  if (!envelope.success) return undefined;
  const index = envelope.data;
  if (!index.chunks.every(isChunk) || !(index.entries?.every(isEntry) ?? true)) return undefined;
  const checked = index as ChunkIndex;
  return sumIssues(checked).length === 0 ? checked : undefined;
}

/** Parse any known chunk index version, translating older ones forward. */
export const ChunkIndex = {
  parse(value: unknown): ChunkIndex {
    return fast(value) ?? ChunkIndexV1.parse(value);
  },
  safeParse(value: unknown): ReturnType<typeof ChunkIndexV1.safeParse> {
    const index = fast(value);
    return index ? { success: true, data: index } : ChunkIndexV1.safeParse(value);
  },
};

export type IndexEntry = NonNullable<ChunkIndex["entries"]>[number];

/** The wire form of a tar's entries as lib/tar/entries.ts reads them: the publisher writes it, the store checks it. */
export function entryTuples(entries: { path: string; length: number; sha256: string; hardlinkTo?: string }[]): IndexEntry[] {
  return entries.map((e) => (e.hardlinkTo !== undefined ? [e.path, e.length, e.sha256, e.hardlinkTo] : [e.path, e.length, e.sha256]));
}

/**
 * The `tar-entries` artifact (`NAME.entries.json`): a build's tar entries
 * in this index's form, as this one JSON text. The build manifest names its
 * sha256 like any artifact's, so a signed manifest binds the entries — and
 * through them the per-entry hashes a store's index lists — to the root it
 * names: a node that trusts the signature need not hash a whole root to know
 * which of its files an upgrade keeps (agents/takeover/patch-verify.ts).
 */
export const TAR_ENTRIES_ARTIFACT = "tar-entries";
export const entriesText = (entries: IndexEntry[]) => JSON.stringify(entries);

/** Each tar entry with its offset in the stream. */
export function entryOffsets(index: ChunkIndex): { path: string; offset: number; length: number; sha256: string; hardlinkTo?: string }[] {
  let offset = 0;
  return (index.entries ?? []).map(([path, length, sha256, hardlinkTo]) => {
    const at = offset;
    offset += length;
    return { path, offset: at, length, sha256, ...(hardlinkTo !== undefined ? { hardlinkTo } : {}) };
  });
}

/** Each chunk with its offset in the stream. */
export function chunkOffsets(index: ChunkIndex): { id: string; offset: number; size: number }[] {
  let offset = 0;
  return index.chunks.map(([id, size]) => {
    const at = offset;
    offset += size;
    return { id, offset: at, size };
  });
}
