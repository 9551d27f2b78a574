import { createHash } from "node:crypto";
import { ALGORITHM, chunkId, chunkStream, DEFAULT_CHUNKER, type ChunkerParams } from "../../lib/chunking.ts";
import { EntryIndexer, NotATarStream } from "../../lib/tar/entries.ts";
import { type ChunkIndex, entryTuples } from "../../wire/chunk-index.ts";

/**
 * Cut a stream into content-defined chunks and describe it as a chunk index;
 * with `entries`, the stream is a tar and the index lists its entries too.
 */
export async function indexStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  params: ChunkerParams = DEFAULT_CHUNKER,
  onChunk?: (id: string, data: Uint8Array) => void | Promise<void>,
  options: { entries?: boolean } = {},
): Promise<ChunkIndex> {
  const whole = createHash("sha256");
  let tar = options.entries ? new EntryIndexer() : undefined;
  // A tar this reader does not follow (GNU long names, say) just has no entries.
  const entriesOf = (t: EntryIndexer) => {
    try {
      return entryTuples(t.finish());
    } catch (e) {
      if (e instanceof NotATarStream) return undefined;
      throw e;
    }
  };
  const chunks: [string, number][] = [];
  let size = 0;
  for await (const data of chunkStream(source, params)) {
    whole.update(data);
    try {
      tar?.push(data);
    } catch (e) {
      if (!(e instanceof NotATarStream)) throw e;
      tar = undefined;
    }
    const id = chunkId(data);
    chunks.push([id, data.length]);
    size += data.length;
    await onChunk?.(id, data);
  }
  const entries = tar && entriesOf(tar);
  return {
    version: 1,
    digest: `sha256:${whole.digest("hex")}`,
    size,
    chunker: { algorithm: ALGORITHM, ...params },
    chunks,
    ...(entries ? { entries } : {}),
  };
}
