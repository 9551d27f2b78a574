/**
 * Bytes move through the store and its client in blocks this big: fewer
 * syscalls, worker messages and hash calls than the network's pieces.
 */
export const BLOCK_BYTES = 1 << 20;

/**
 * Regroup a stream into blocks of `size` bytes (the last may be shorter).
 * Every block is a fresh buffer or a slice of a source piece, never reused,
 * so consumers may keep them.
 */
export async function* blocks(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, size = BLOCK_BYTES) {
  let block = Buffer.allocUnsafe(size);
  let used = 0;
  for await (const piece of source) {
    let at = 0;
    while (at < piece.length) {
      if (used === 0 && piece.length - at >= size) {
        yield piece.subarray(at, at + size);
        at += size;
        continue;
      }
      const n = Math.min(size - used, piece.length - at);
      block.set(piece.subarray(at, at + n), used);
      used += n;
      at += n;
      if (used === size) {
        yield block;
        block = Buffer.allocUnsafe(size);
        used = 0;
      }
    }
  }
  if (used) yield block.subarray(0, used);
}
