import { createHash } from "node:crypto";
import { ALGORITHM } from "../lib/chunking.ts";
import { ChunkIndex, entryTuples } from "../wire/chunk-index.ts";
import { streamOf } from "./backends/types.ts";
import { blobBytes } from "./blobs.ts";
import { BadRequest, Conflict, DigestMismatch, NotFound } from "./errors.ts";
import type { ImageRecord } from "./image.ts";
import { ingest } from "./ingest.ts";
import { EntryIndexer, NotATarStream } from "../lib/tar/entries.ts";
import type { Store } from "./store.ts";

/**
 * An image's chunk index (`PUT/GET /v2/images/{id}/chunk-index`), stored as
 * a blob and named by the image's `ooo_chunk_index` property. Two ways in:
 *
 * - the image is `queued` and every chunk is already a blob (the publisher
 *   uploaded the ones the store lacked): the store assembles the data from
 *   its chunks, verifies it against the index digest and activates the image.
 *   Publishing an image that differs from the last one by a package sends
 *   about 0.5% of its bytes.
 * - the image is `active` (its data came by PUT …/file): the store cuts its
 *   own data where the index says, checks every chunk id, and stores the
 *   chunks it lacks. Either way an index is never stored unchecked.
 */
export const MAX_INDEX_BYTES = 64 << 20;

function parseIndex(body: unknown): ChunkIndex {
  const parsed = ChunkIndex.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BadRequest(`Invalid chunk index at ${issue.path.join(".") || "top"}: ${issue.message}`);
  }
  if (parsed.data.chunker.algorithm !== ALGORITHM)
    throw new BadRequest(`Unknown chunker ${parsed.data.chunker.algorithm}; this store knows ${ALGORITHM}`);
  return parsed.data;
}

async function missingChunks(store: Store, index: ChunkIndex): Promise<string[]> {
  const unique = [...new Set(index.chunks.map(([id]) => id))];
  const missing: string[] = [];
  for (let i = 0; i < unique.length; i += 32) {
    const batch = unique.slice(i, i + 32);
    const sizes = await Promise.all(batch.map((id) => store.backend.stat(id)));
    batch.forEach((id, j) => sizes[j] === undefined && missing.push(id));
  }
  return missing;
}

/** Chunk reads in flight at once: a Swift backend answers each over HTTP. */
const READ_AHEAD = 16;

/** The chunks in order, each checked against its id as it is read. */
async function* assemble(store: Store, index: ChunkIndex): AsyncGenerator<Uint8Array> {
  const reads: Promise<Uint8Array>[] = [];
  let next = 0;
  const fill = () => {
    while (reads.length < READ_AHEAD && next < index.chunks.length) {
      const read = blobBytes(store, index.chunks[next++]![0]);
      read.catch(() => {}); // awaited in order below; don't report it twice
      reads.push(read);
    }
  };
  for (const [id, size] of index.chunks) {
    fill();
    const bytes = await reads.shift()!;
    const actual = createHash("sha256").update(bytes).digest("hex");
    if (actual !== id || bytes.length !== size) throw new DigestMismatch(`stored chunk ${id}`, `sha256:${id}`, `sha256:${actual}`);
    yield bytes;
  }
}

/**
 * Checks an index's tar entries against the data as it streams past: a node
 * trusts them to tell which files differ between two images, so the store
 * keeps none it has not recomputed.
 */
function entryCheck(index: ChunkIndex) {
  const indexer = index.entries ? new EntryIndexer() : undefined;
  return {
    tap(bytes: Uint8Array) {
      try {
        indexer?.push(bytes);
      } catch (e) {
        if (e instanceof NotATarStream) throw new BadRequest(`The chunk index lists tar entries, but the data is not a tar this store reads: ${e.message}`);
        throw e;
      }
    },
    verify() {
      if (!indexer) return;
      const actual = entryTuples(indexer.finish());
      const claimed = index.entries!;
      const at = actual.findIndex((e, i) => JSON.stringify(e) !== JSON.stringify(claimed[i]));
      if (at >= 0 || actual.length !== claimed.length) {
        const i = at >= 0 ? at : Math.min(actual.length, claimed.length);
        throw new BadRequest(
          `The chunk index's tar entries do not match the data at entry ${i} (${JSON.stringify(claimed[i]?.[0] ?? actual[i]?.[0])})`,
        );
      }
    },
  };
}

/** Store the index itself as a blob; returns its digest. */
async function storeIndexBlob(store: Store, text: string) {
  const blob = await ingest(store.backend, [Buffer.from(text)], { maxSize: MAX_INDEX_BYTES });
  return `sha256:${blob.hex}`;
}

async function attachToQueued(store: Store, r: ImageRecord, index: ChunkIndex, text: string) {
  const declared = r.properties.ooo_digest;
  if (declared !== undefined && declared !== index.digest) throw new DigestMismatch("chunk index digest", declared, index.digest);
  const missing = await missingChunks(store, index);
  if (missing.length)
    throw new BadRequest(`${missing.length} chunks of the index are not in the store, e.g. sha256:${missing[0]}`, {
      hint: "Upload them first: POST /v2/ooo/blobs/missing tells which, PUT /v2/ooo/blobs/{digest} sends each.",
    });
  await store.beginSaving(r.id);
  let data;
  let indexDigest;
  const entries = entryCheck(index);
  async function* checked() {
    for await (const bytes of assemble(store, index)) {
      entries.tap(bytes);
      yield bytes;
    }
  }
  try {
    data = await ingest(store.backend, checked(), {
      expect: index.digest.slice(7),
      declaredSize: index.size,
      maxSize: store.imageSizeCap,
      allowEmpty: true,
      md5: store.md5Checksums,
      large: true,
    });
    entries.verify();
    indexDigest = await storeIndexBlob(store, text);
    await store.backend.flush();
  } catch (e) {
    await store.abandonSaving(r.id);
    throw e;
  }
  return store.finishSaving(r.id, data, { ooo_chunk_index: indexDigest });
}

/** Cut the stored data at the index's boundaries; check each id; store new chunks. */
async function attachToActive(store: Store, r: ImageRecord, index: ChunkIndex, text: string) {
  const actual = `sha256:${r.os_hash_value}`;
  if (index.digest !== actual || index.size !== r.size) throw new DigestMismatch("chunk index digest", actual, index.digest);
  const reader = streamOf(await store.backend.read(r.os_hash_value!)).getReader();
  let pending: Uint8Array = new Uint8Array(0);
  const take = async (n: number): Promise<Uint8Array> => {
    const parts: Uint8Array[] = [];
    let have = 0;
    while (have < n) {
      if (pending.length === 0) {
        const { value, done } = await reader.read();
        if (done) throw new DigestMismatch("stored image data", `${index.size} bytes`, "fewer bytes");
        pending = value;
      }
      const piece = pending.subarray(0, n - have);
      pending = pending.subarray(piece.length);
      parts.push(piece);
      have += piece.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  };
  const missing = new Set(await missingChunks(store, index));
  const writes = new Set<Promise<unknown>>();
  const entries = entryCheck(index);
  try {
    for (const [id, size] of index.chunks) {
      const bytes = await take(size);
      entries.tap(bytes);
      const hex = createHash("sha256").update(bytes).digest("hex");
      if (hex !== id) throw new DigestMismatch(`chunk at this place of the index`, `sha256:${id}`, `sha256:${hex}`);
      if (!missing.delete(id)) continue;
      // A few writes in flight: a Swift backend answers each over HTTP.
      const write = ingest(store.backend, [bytes], { expect: id }).finally(() => writes.delete(write));
      writes.add(write);
      if (writes.size >= READ_AHEAD) await Promise.race(writes);
    }
    await Promise.all(writes);
    entries.verify();
  } finally {
    await reader.cancel().catch(() => {});
  }
  const indexDigest = await storeIndexBlob(store, text);
  await store.backend.flush();
  return store.setServerProperties(r.id, { ooo_chunk_index: indexDigest });
}

export async function attachChunkIndex(store: Store, id: string, text: string): Promise<ImageRecord> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRequest("The chunk index is not valid JSON");
  }
  const index = parseIndex(body);
  const r = store.get(id);
  if (r.status === "queued") return attachToQueued(store, r, index, text);
  if (r.status === "active") return attachToActive(store, r, index, text);
  throw new Conflict(`Image ${id} is ${r.status}; a chunk index can be added to a queued or active image`);
}

export async function readChunkIndex(store: Store, id: string): Promise<Uint8Array> {
  const r = store.get(id);
  store.checkDownloadable(r);
  const digest = r.properties.ooo_chunk_index;
  if (!digest) throw new NotFound(`Image ${id} has no chunk index`);
  return blobBytes(store, digest.slice(7));
}
