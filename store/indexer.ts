import { createHash } from "node:crypto";
import { ALGORITHM, chunkId, chunkStream, DEFAULT_CHUNKER, type ChunkerParams } from "../lib/chunking.ts";
import type { ChunkIndex } from "../wire/chunk-index.ts";

/** Cut a stream into content-defined chunks and describe it as a chunk index. */
export async function indexStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  params: ChunkerParams = DEFAULT_CHUNKER,
  onChunk?: (id: string, data: Uint8Array) => void | Promise<void>,
): Promise<ChunkIndex> {
  const whole = createHash("sha256");
  const chunks: [string, number][] = [];
  let size = 0;
  for await (const data of chunkStream(source, params)) {
    whole.update(data);
    const id = chunkId(data);
    chunks.push([id, data.length]);
    size += data.length;
    await onChunk?.(id, data);
  }
  return { version: 1, digest: `sha256:${whole.digest("hex")}`, size, chunker: { algorithm: ALGORITHM, ...params }, chunks };
}
