import { createHash } from "node:crypto";

/**
 * Content-defined chunking: cut a byte stream where its content says so, so
 * that an insertion or deletion moves only the chunks around it and every
 * chunk after it comes back identical (casync, FastCDC). The store keeps an
 * image's root stream as such chunks, and a node that has the previous image
 * fetches only the chunks it lacks. Both sides must cut at exactly the same
 * places, so everything here is pure and versioned by ALGORITHM: changing the
 * table, the masks or the rules is a new algorithm name, never an edit.
 *
 * The algorithm ("gear32-nc2-v1"):
 * - a gear rolling hash, h = (h << 1) + GEAR[byte] in 32 bits: bit k of h
 *   depends on the last k+1 bytes only, so the top bits that the masks test
 *   see a 32-byte window (casync's buzhash uses 48; gear is cheaper in JS);
 * - the first `min` bytes of a chunk are not hashed at all (FastCDC's
 *   cut-point skipping; no cut may fall there anyway);
 * - normalized chunking, level 2 (FastCDC): before `avg` a cut needs the top
 *   log2(avg)+2 bits of h to be zero, after it only log2(avg)-2, so chunk sizes
 *   gather around `avg` instead of spreading exponentially;
 * - a chunk never exceeds `max`; the last chunk of a stream may be short.
 * Defaults follow casync: avg 64 KiB, min avg/4, max 4×avg.
 *
 * Measured here: chunking the canonical root tar, a one-package change moves
 * about 0.5% of the bytes (test/integration/store-upgrade.test.ts checks it
 * stays well under 10%).
 */
export const ALGORITHM = "gear32-nc2-v1";

export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
}

export const DEFAULT_CHUNKER: ChunkerParams = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };

/**
 * The gear table: 256 pseudo-random 32-bit words, the first four bytes of
 * sha256("ooo-gear-v1:" + i). Derived, not pasted, so it can be checked; the
 * unit test pins a few values, since changing it would re-cut every image.
 */
export const GEAR = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = createHash("sha256").update(`ooo-gear-v1:${i}`).digest().readInt32BE(0);
  return table;
})();

/** A mask of the top `bits` bits of a 32-bit word, as a signed int. */
const topBits = (bits: number) => (bits >= 32 ? -1 : ((1 << bits) - 1) << (32 - bits)) | 0;

export function checkParams(p: ChunkerParams): string | undefined {
  const isInt = (n: number) => Number.isSafeInteger(n) && n > 0;
  if (![p.min, p.avg, p.max].every(isInt)) return "chunk sizes must be positive integers";
  if (!(p.min < p.avg && p.avg < p.max)) return "chunk sizes must satisfy min < avg < max";
  if ((p.avg & (p.avg - 1)) !== 0) return "the average chunk size must be a power of two";
  if (p.avg < 256 || p.avg > 2 ** 28) return "the average chunk size must be between 256 B and 256 MiB";
  return undefined;
}

/**
 * A streaming cutter: feed it the stream piece by piece; it remembers the
 * hash and the length of the chunk in progress across pieces.
 */
export class Chunker {
  private h = 0;
  /** Bytes of the current chunk seen so far. */
  private len = 0;
  private readonly maskS: number;
  private readonly maskL: number;

  constructor(readonly params: ChunkerParams = DEFAULT_CHUNKER) {
    const problem = checkParams(params);
    if (problem) throw new RangeError(problem);
    const bits = Math.log2(params.avg);
    this.maskS = topBits(bits + 2);
    this.maskL = topBits(bits - 2);
  }

  /**
   * Scan `buf` from `start`: return the index just past the end of the
   * current chunk if it ends inside `buf`, or -1 if it goes on past it (the
   * state carries over to the next piece).
   */
  findCut(buf: Uint8Array, start: number): number {
    const { min, avg, max } = this.params;
    const n = buf.length;
    let i = start;
    let offset = this.len; // offset in the chunk of buf[i]
    if (offset < min) {
      const skip = Math.min(min - offset, n - i);
      i += skip;
      offset += skip;
      if (offset < min) {
        this.len = offset;
        return -1;
      }
    }
    // From here on the chunk offset of buf[i] is base + i.
    const base = offset - i;
    let h = this.h;
    const gear = GEAR;
    // Two loops rather than one choosing its mask per byte: this is the hot
    // path of every chunked publish and fetch.
    const maskS = this.maskS;
    let end = Math.min(n, avg - base);
    for (; i < end; i++) {
      h = ((h << 1) + gear[buf[i]!]!) | 0;
      if ((h & maskS) === 0) return this.cut(i + 1);
    }
    const maskL = this.maskL;
    end = Math.min(n, max - base);
    for (; i < end; i++) {
      h = ((h << 1) + gear[buf[i]!]!) | 0;
      if ((h & maskL) === 0) return this.cut(i + 1);
    }
    if (base + i === max) return this.cut(i);
    this.h = h;
    this.len = base + i;
    return -1;
  }

  private cut(at: number): number {
    this.h = 0;
    this.len = 0;
    return at;
  }
}

/** The cut points of a whole buffer: the end offset of every chunk. */
export function cutPoints(data: Uint8Array, params: ChunkerParams = DEFAULT_CHUNKER): number[] {
  const chunker = new Chunker(params);
  const ends: number[] = [];
  let start = 0;
  while (start < data.length) {
    const cut = chunker.findCut(data, start);
    if (cut < 0) break;
    ends.push(cut);
    start = cut;
  }
  if (start < data.length) ends.push(data.length);
  return ends;
}

/**
 * Cut a stream into chunks and yield each chunk's bytes in order. A chunk
 * that lies inside one piece of the source is yielded as a view of that
 * piece (no copy), so the source must not reuse its buffers.
 */
export async function* chunkStream(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  params: ChunkerParams = DEFAULT_CHUNKER,
): AsyncGenerator<Uint8Array> {
  const chunker = new Chunker(params);
  let parts: Uint8Array[] = [];
  let partsLength = 0;
  const joined = (last: Uint8Array) => {
    const out = new Uint8Array(partsLength + last.length);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    out.set(last, at);
    parts = [];
    partsLength = 0;
    return out;
  };
  for await (const buf of source) {
    let start = 0;
    while (start < buf.length) {
      const cut = chunker.findCut(buf, start);
      if (cut < 0) {
        parts.push(buf.subarray(start));
        partsLength += buf.length - start;
        break;
      }
      const piece = buf.subarray(start, cut);
      yield parts.length ? joined(piece) : piece;
      start = cut;
    }
  }
  if (partsLength) yield joined(new Uint8Array(0));
}

/** A chunk's id: the sha256 of its bytes, in lowercase hex. */
export function chunkId(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
