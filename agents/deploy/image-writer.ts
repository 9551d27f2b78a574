import { createHash } from "node:crypto";
import { fsyncSync, writeSync } from "node:fs";
import { dataRuns } from "../../lib/sparse.ts";
import { ImageMismatch } from "../errors.ts";
import { zeroOutBlock, zeroOutFile } from "./syscalls.ts";

/**
 * A raw disk image, written onto a disk as it streams in. Every byte is
 * hashed; only 64 KiB blocks holding data are written, and the runs of
 * zeros between them are zeroed by the device itself (BLKZEROOUT; a file
 * gets holes), so a thin-provisioned or SSD target stays thin and the
 * zeros cost no writes. The first MiB (MBR and primary GPT) and the last
 * (the backup GPT) are held back in memory: until finish() has found the
 * size and sha256 the deployer named, the disk has no partition table and
 * boots nothing. commit() writes them.
 */
export const HOLD_BYTES = 2 ** 20;
/** Data is examined and written in pieces this big. */
const PIECE = 4 * 2 ** 20;
/** Zeroing by the device works in whole logical blocks: edges off this alignment are written as zeros. */
const ALIGN = 4096;
const ZEROS = Buffer.alloc(PIECE);

export interface Target {
  fd: number;
  kind: "block" | "file";
}

export class ImageWriter {
  private readonly hash = createHash("sha256");
  private readonly piece = Buffer.allocUnsafe(PIECE);
  private filled = 0;
  /** Where the piece being filled starts in the image. */
  private pieceStart = 0;
  /** Bytes received (hashed once their piece is flushed). */
  private received = 0;
  private zeroFrom = -1;
  private zeroTo = -1;
  private readonly headEnd: number;
  private readonly tailStart: number;
  private readonly head: Buffer;
  private readonly tail: Buffer;
  /** Bytes written as data, and zeroed without writing. */
  written = 0;
  zeroed = 0;

  constructor(
    private readonly target: Target,
    private readonly expect: { size: number; sha256: string },
  ) {
    this.headEnd = Math.min(HOLD_BYTES, expect.size);
    this.tailStart = Math.max(expect.size - HOLD_BYTES, this.headEnd);
    this.head = Buffer.alloc(this.headEnd);
    this.tail = Buffer.alloc(expect.size - this.tailStart);
  }

  get bytesReceived() {
    return this.received;
  }

  push(chunk: Uint8Array) {
    if (this.received + chunk.length > this.expect.size)
      throw new ImageMismatch(`the image is longer than the ${this.expect.size} bytes it should have`);
    for (let at = 0; at < chunk.length; ) {
      const n = Math.min(chunk.length - at, PIECE - this.filled);
      this.piece.set(chunk.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === PIECE) this.flushPiece();
    }
    this.received += chunk.length;
  }

  /** Everything received: check size and digest. Nothing that makes the disk bootable is written yet. */
  finish(): { sha256: string; size: number } {
    this.flushPiece();
    this.flushZeros();
    fsyncSync(this.target.fd);
    const sha256 = this.hash.digest("hex");
    if (this.received !== this.expect.size) throw new ImageMismatch(`the image ended after ${this.received} of its ${this.expect.size} bytes`);
    if (sha256 !== this.expect.sha256) throw new ImageMismatch(`the image's sha256 is ${sha256}, not ${this.expect.sha256} as the deployer said`);
    return { sha256, size: this.received };
  }

  /** Write the held-back first and last MiB: from now on the disk has the image's partition table. */
  commit() {
    this.writeAll(this.tail, this.tailStart);
    this.writeAll(this.head, 0);
    fsyncSync(this.target.fd);
  }

  private flushPiece() {
    if (!this.filled) return;
    const data = this.piece.subarray(0, this.filled);
    const start = this.pieceStart;
    this.hash.update(data);
    const end = start + data.length;
    // Held back: copies of what falls in the first or last MiB.
    if (start < this.headEnd) data.copy(this.head, start, 0, Math.min(end, this.headEnd) - start);
    if (end > this.tailStart) data.copy(this.tail, Math.max(start, this.tailStart) - this.tailStart, Math.max(start, this.tailStart) - start);
    const from = Math.max(start, this.headEnd);
    const to = Math.min(end, this.tailStart);
    if (from < to) {
      const middle = data.subarray(from - start, to - start);
      let at = from;
      for (const [a, b] of dataRuns(middle)) {
        this.zeros(at, from + a);
        this.flushZeros();
        this.writeAll(middle.subarray(a, b), from + a);
        this.written += b - a;
        at = from + b;
      }
      this.zeros(at, to);
    }
    this.pieceStart = end;
    this.filled = 0;
  }

  private zeros(from: number, to: number) {
    if (from >= to) return;
    if (this.zeroTo === from) this.zeroTo = to;
    else {
      this.flushZeros();
      this.zeroFrom = from;
      this.zeroTo = to;
    }
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
