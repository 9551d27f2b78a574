import { z } from "zod";
import { DIGEST_FORMAT } from "../wire/digest.ts";
import { Digest } from "../wire/image-ref.ts";
import { streamOf } from "./backends/types.ts";
import { BadRequest, BlobNotFound, TooLarge } from "./errors.ts";
import { ingest } from "./ingest.ts";
import { parseRange } from "./range.ts";
import type { Store } from "./store.ts";

/**
 * ooo's extension: blobs by content address (`/v2/ooo/blobs/sha256:<hex>`).
 * Chunks, artifacts (qcow2, kernel …), manifests and chunk indexes are all
 * blobs; a chunk shared by many images is stored once. A PUT is checked
 * against the digest in its URL, so a blob's name always tells its bytes.
 */
/** Digests one query may ask about: the client asks in pages of 50,000 (a 3 GiB root has ~50,000 chunks). */
export const MAX_MISSING_QUERY = 50_000;
export const MAX_MISSING_QUERY_BYTES = MAX_MISSING_QUERY * 80 + 1024;
const Missing = z.object({ digests: z.array(Digest) });

function parseDigest(text: string): string {
  if (!Digest.safeParse(text).success) throw new BadRequest(`Not a blob digest: ${text.slice(0, 80)} (${DIGEST_FORMAT})`);
  return text.slice("sha256:".length);
}

/** Which of these blobs the store lacks (so a publisher sends only those). */
export async function missingBlobs(store: Store, body: unknown): Promise<string[]> {
  const parsed = Missing.safeParse(body);
  if (!parsed.success) throw new BadRequest(`Invalid blob query: ${parsed.error.issues[0]!.message}`);
  if (parsed.data.digests.length > MAX_MISSING_QUERY)
    throw new TooLarge(`A blob query may name at most ${MAX_MISSING_QUERY} digests, not ${parsed.data.digests.length}: ask in pages`);
  const missing: string[] = [];
  const digests = [...new Set(parsed.data.digests)];
  // Parallel stats: a Swift backend answers each over HTTP.
  const width = 32;
  for (let i = 0; i < digests.length; i += width) {
    const batch = digests.slice(i, i + width);
    const sizes = await Promise.all(batch.map((d) => store.backend.stat(d.slice(7))));
    batch.forEach((d, j) => sizes[j] === undefined && missing.push(d));
  }
  return missing;
}

/**
 * Above this, a blob is an artifact (a raw disk, a qcow2), not a chunk or a
 * document: it is hashed on worker threads while it is received, as image
 * data is, and written thin (a raw disk's zeros become holes).
 */
const LARGE_BLOB = 16 * 1024 * 1024;

export async function putBlob(store: Store, digest: string, body: AsyncIterable<Uint8Array>, declaredSize?: number) {
  const hex = parseDigest(digest);
  const large = declaredSize === undefined || declaredSize > LARGE_BLOB;
  return ingest(store.backend, body, { expect: hex, declaredSize, maxSize: store.imageSizeCap, allowEmpty: true, large, thin: true });
}

export async function readBlob(store: Store, digest: string, range: string | null) {
  const hex = parseDigest(digest);
  const size = await store.backend.stat(hex);
  if (size === undefined) throw new BlobNotFound(digest);
  await store.withdrawn.check(hex);
  const parsed = parseRange(range, null, size);
  return { body: await store.backend.read(hex, parsed), size, range: parsed };
}

/** A small blob (index, manifest) read whole into memory. */
export async function blobBytes(store: Store, hex: string): Promise<Uint8Array> {
  const body = await store.backend.read(hex);
  return new Uint8Array(await new Response(streamOf(body)).arrayBuffer());
}
