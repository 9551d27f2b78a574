import { fsyncSync, writeSync } from "node:fs";
import { dataRuns } from "../../lib/sparse.ts";
import { zeroOutBlock, zeroOutFile } from "./syscalls.ts";

/**
 * A disk being written with an image, whatever order its bytes come in.
 * Only 64 KiB blocks holding data are written; runs of zeros are zeroed by
 * the device itself (BLKZEROOUT; a file gets holes), so a thin-provisioned
 * or SSD target stays thin and the zeros cost no writes. The first MiB (MBR
 * and primary GPT) and the last (the backup GPT) are held back in memory:
 * until the writer has verified the image, the disk has no partition table
 * and boots nothing. commit() writes them.
 */
export const HOLD_BYTES = 2 ** 20;
/** Zeroing by the device works in whole logical blocks: edges off this alignment are written as zeros. */
const ALIGN = 4096;
const ZEROS = Buffer.alloc(ALIGN);

export interface Target {
  fd: number;
  kind: "block" | "file";
}

export class HeldDisk {
  private readonly headEnd: number;
  private readonly tailStart: number;
  private readonly head: Buffer;
  private readonly tail: Buffer;
  /** A range of zeros not zeroed yet: the next one that starts where it ends joins it. */
  private zeroFrom = -1;
  private zeroTo = -1;
  /** Bytes written as data, and zeroed without writing (the held-back ends not counted). */
  written = 0;
  zeroed = 0;

  constructor(
    private readonly target: Target,
    readonly size: number,
  ) {
    this.headEnd = Math.min(HOLD_BYTES, size);
    this.tailStart = Math.max(size - HOLD_BYTES, this.headEnd);
    this.head = Buffer.alloc(this.headEnd);
    this.tail = Buffer.alloc(size - this.tailStart);
  }

  /** The image's bytes at `start`: held back where they fall in the ends, else written (data) or zeroed (zero blocks). */
  put(data: Uint8Array, start: number) {
    const end = start + data.length;
    if (start < this.headEnd) this.head.set(data.subarray(0, Math.min(end, this.headEnd) - start), start);
    if (end > this.tailStart) this.tail.set(data.subarray(Math.max(start, this.tailStart) - start), Math.max(start, this.tailStart) - this.tailStart);
    const from = Math.max(start, this.headEnd);
    const to = Math.min(end, this.tailStart);
    if (from >= to) return;
    const middle = data.subarray(from - start, to - start);
    let at = from;
    for (const [a, b] of dataRuns(middle)) {
      this.zero(at, from + a);
      this.flushZeros();
      this.writeAll(middle.subarray(a, b), from + a);
      this.written += b - a;
      at = from + b;
    }
    this.zero(at, to);
  }

  /** Zeros in [from, to) of the image (the held-back ends are zeros until put says otherwise). */
  zero(from: number, to: number) {
    from = Math.max(from, this.headEnd);
    to = Math.min(to, this.tailStart);
    if (from >= to) return;
    if (this.zeroTo === from) this.zeroTo = to;
    else {
      this.flushZeros();
      this.zeroFrom = from;
      this.zeroTo = to;
    }
  }

  /** Everything but the ends is on the disk. */
  flush() {
    this.flushZeros();
    fsyncSync(this.target.fd);
  }

  /** Write the held-back first and last MiB: from now on the disk has the image's partition table. */
  commit() {
    this.flushZeros();
    this.writeAll(this.tail, this.tailStart);
    this.writeAll(this.head, 0);
    fsyncSync(this.target.fd);
  }

  private flushZeros() {
    if (this.zeroFrom < 0) return;
    const [from, to] = [this.zeroFrom, this.zeroTo];
    this.zeroFrom = this.zeroTo = -1;
    const a = Math.min(Math.ceil(from / ALIGN) * ALIGN, to);
    const b = Math.max(Math.floor(to / ALIGN) * ALIGN, a);
    if (from < a) this.writeAll(ZEROS.subarray(0, a - from), from);
    if (a < b) (this.target.kind === "block" ? zeroOutBlock : zeroOutFile)(this.target.fd, a, b - a);
    if (b < to) this.writeAll(ZEROS.subarray(0, to - b), b);
    this.zeroed += to - from;
  }

  private writeAll(buf: Uint8Array, position: number) {
    for (let done = 0; done < buf.length; ) done += writeSync(this.target.fd, buf, done, buf.length - done, position + done);
  }
}
