import { createHash } from "node:crypto";
import type { BlobBackend } from "./backends/types.ts";
import { BadRequest, DigestMismatch, TooLarge } from "./errors.ts";
import { FileHash, ParallelHash } from "../lib/parallel-hash.ts";

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
  /** Image data, hundreds of MiB: hash on worker threads while receiving. */
  large?: boolean;
  /**
   * The bytes may be mostly zeros (a raw disk): write them through the
   * backend's write(), which can leave holes, rather than natively.
   */
  thin?: boolean;
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
  const algorithms = options.md5 ? ["sha256", "md5"] : ["sha256"];
  const max = options.maxSize ?? Number.MAX_SAFE_INTEGER;
  const checkSize = (size: number) => {
    if (size > max) throw new TooLarge(`Image exceeds the storage quota: more than ${max} bytes`);
    if (options.declaredSize !== undefined && size > options.declaredSize)
      throw new BadRequest(`Image size mismatch: more than the declared ${options.declaredSize} bytes`);
  };
  // Image data is big: worker threads hash it (sha256 and md5 each on its
  // own core) while this thread receives. A request body bound for a local
  // file goes there natively (Bun.write) and the workers read it back
  // behind the writer; other backends get it through a shared ring of
  // blocks, each written in the background. Chunks and documents are small:
  // hashing them here beats a round trip to a worker.
  const local = options.large && !options.thin && source instanceof ReadableStream ? writer.local : undefined;
  const follow = local ? new FileHash(local.fd, algorithms, { writeback: true }) : undefined;
  const ring = options.large && !local ? new ParallelHash(algorithms) : undefined;
  // The backend's writes, one after another (BlobWriter takes one at a time).
  let writing: Promise<void> = Promise.resolve();
  const sink = (block: Uint8Array) => (writing = writing.then(() => writer.write(block)));
  let size = 0;
  try {
    let digests: (string | undefined)[] | undefined;
    if (local) {
      size = await local.writeAll(source as ReadableStream<Uint8Array>);
      checkSize(size);
    } else {
      const sha = ring ? undefined : createHash("sha256");
      const md5Here = !ring && options.md5 ? createHash("md5") : undefined;
      for await (const piece of source) {
        size += piece.length;
        checkSize(size);
        if (ring) await ring.update(piece, sink);
        else {
          sha!.update(piece);
          md5Here?.update(piece);
          await writer.write(piece);
        }
      }
      if (!ring) digests = [sha!.digest("hex"), md5Here?.digest("hex")];
    }
    if (options.declaredSize !== undefined && size !== options.declaredSize)
      throw new BadRequest(`Image size mismatch: declared ${options.declaredSize} bytes, got ${size}`);
    if (size === 0 && !options.allowEmpty)
      throw new BadRequest(
        "Refusing an empty upload (0 bytes): a client without a TTY may have sent its empty stdin",
        { hint: "Send the header x-ooo-allow-empty: true, or set allowEmptyUploads in the store config." },
      );
    if (follow) digests = await follow.digest(size);
    else if (ring) digests = await ring.digest(sink);
    await writing;
    const [hex, md5] = digests! as [string, string | undefined];
    if (options.expect !== undefined && hex !== options.expect)
      throw new DigestMismatch("uploaded data", `sha256:${options.expect}`, `sha256:${hex}`);
    const existed = (await backend.stat(hex)) === size;
    if (existed) await writer.abort();
    else await writer.commit(hex);
    return { hex, size, md5, existed };
  } catch (e) {
    // Nothing may still read or write the blob's file when it is dropped.
    await follow?.cancel();
    await ring?.cancel();
    await writing.catch(() => {});
    await writer.abort().catch(() => {});
    throw e;
  }
}
