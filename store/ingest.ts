import { createHash } from "node:crypto";
import type { BlobBackend } from "./backends/types.ts";
import { BadRequest, DigestMismatch, TooLarge } from "./errors.ts";
import { blocks } from "./blocks.ts";
import { ParallelHash } from "./parallel-hash.ts";

/**
 * Stream bytes into the backend while hashing them, and give them their
 * content address only if every check passes: the declared size, the
 * expected digest, the size cap, and not empty unless allowed. On any
 * failure — a check, a cut connection, a full disk — the write is aborted
 * and nothing is kept.
 */
export interface IngestOptions {
  /** The sha256 (hex) the bytes must have. */
  expect?: string;
  /** The size the client declared (x-openstack-image-size). */
  declaredSize?: number;
  maxSize?: number;
  allowEmpty?: boolean;
  /** Also compute md5 (Glance's `checksum`); only image data needs it. */
  md5?: boolean;
  /** Image data, hundreds of MiB: hash on the worker thread. */
  large?: boolean;
}

export interface Ingested {
  hex: string;
  size: number;
  md5?: string;
  /** The blob was already there; these bytes only confirmed it. */
  existed: boolean;
}

export async function ingest(
  backend: BlobBackend,
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: IngestOptions = {},
): Promise<Ingested> {
  const writer = await backend.writer();
  // Image data is big: its hashes run on a worker while this thread
  // receives and writes. Chunks and documents are small: hashing them here
  // beats a round trip to the worker.
  const worker = options.large ? new ParallelHash(options.md5 ? ["sha256", "md5"] : ["sha256"]) : undefined;
  const sha = worker ? undefined : createHash("sha256");
  const md5Here = !worker && options.md5 ? createHash("md5") : undefined;
  let size = 0;
  const max = options.maxSize ?? Number.MAX_SAFE_INTEGER;
  try {
    for await (const piece of blocks(source)) {
      size += piece.length;
      if (size > max) throw new TooLarge(`Image exceeds the storage quota: more than ${max} bytes`);
      if (options.declaredSize !== undefined && size > options.declaredSize)
        throw new BadRequest(`Image size mismatch: more than the declared ${options.declaredSize} bytes`);
      sha?.update(piece);
      md5Here?.update(piece);
      await writer.write(piece);
      worker?.update(piece); // last: it may move the block to the worker
    }
    if (options.declaredSize !== undefined && size !== options.declaredSize)
      throw new BadRequest(`Image size mismatch: declared ${options.declaredSize} bytes, got ${size}`);
    if (size === 0 && !options.allowEmpty)
      throw new BadRequest(
        "Refusing an empty upload (0 bytes): a client without a TTY may have sent its empty stdin",
        { hint: "Send the header x-ooo-allow-empty: true, or set allowEmptyUploads in the store config." },
      );
    const digests = worker ? await worker.digest() : [sha!.digest("hex"), md5Here?.digest("hex")];
    const hex = digests[0]!;
    const md5 = digests[1];
    if (options.expect !== undefined && hex !== options.expect)
      throw new DigestMismatch("uploaded data", `sha256:${options.expect}`, `sha256:${hex}`);
    const existed = (await backend.stat(hex)) === size;
    if (existed) await writer.abort();
    else await writer.commit(hex);
    return { hex, size, md5, existed };
  } catch (e) {
    worker?.cancel();
    await writer.abort().catch(() => {});
    throw e;
  }
}

/** Read a whole body (a JSON document, a chunk) into memory, refusing more than `max` bytes. */
export async function readAll(source: AsyncIterable<Uint8Array>, max: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const piece of source) {
    size += piece.length;
    if (size > max) throw new TooLarge(`Request body is larger than ${max} bytes`);
    parts.push(piece);
  }
  return Buffer.concat(parts, size);
}
