import { createHash } from "node:crypto";
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";

const CHUNK = 1 << 20;
/** A sparse copy leaves a hole for every block of zeros this big (and for a shorter last one). */
const HOLE_BLOCK = 64 * 1024;
const ZERO = Buffer.alloc(HOLE_BLOCK);

/**
 * The parts of `data` a sparse writer writes, as [start, end) runs of
 * 64 KiB blocks that hold a non-zero byte; it seeks over the rest.
 */
export function* dataRuns(data: Uint8Array): Generator<[number, number]> {
  let run = -1; // where the current run of data blocks starts
  for (let off = 0; off < data.length; off += HOLE_BLOCK) {
    const end = Math.min(off + HOLE_BLOCK, data.length);
    if (Buffer.compare(data.subarray(off, end), ZERO.subarray(0, end - off)) !== 0) {
      if (run < 0) run = off;
    } else if (run >= 0) {
      yield [run, off];
      run = -1;
    }
  }
  if (run >= 0) yield [run, data.length];
}

/**
 * Copy `src` to `dest` in one pass, hashing every byte (holes included, so
 * the digest is that of the plain file) and writing only non-zero 64 KiB
 * blocks, so the copy is as sparse as the source. Returns sha256 and size.
 */
export function copySparseHashed(src: string, dest: string): { sha256: string; size: number } {
  const hash = createHash("sha256");
  const input = openSync(src, "r");
  const output = openSync(dest, "w");
  try {
    const size = fstatSync(input).size;
    const buf = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    while (pos < size) {
      const n = readSync(input, buf, 0, Math.min(CHUNK, size - pos), pos);
      if (n <= 0) throw new Error(`${src} ended early at ${pos} of ${size} bytes`);
      hash.update(n === CHUNK ? buf : buf.subarray(0, n));
      for (const [start, end] of dataRuns(buf.subarray(0, n))) writeSync(output, buf, start, end - start, pos + start);
      pos += n;
    }
    ftruncateSync(output, size);
    return { sha256: hash.digest("hex"), size };
  } finally {
    closeSync(input);
    closeSync(output);
  }
}

/** sha256 of a whole file, streamed. */
export function sha256File(path: string): { sha256: string; size: number } {
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, size);
      if (n <= 0) break;
      hash.update(n === CHUNK ? buf : buf.subarray(0, n));
      size += n;
    }
    return { sha256: hash.digest("hex"), size };
  } finally {
    closeSync(fd);
  }
}
