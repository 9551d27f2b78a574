import { createHash } from "node:crypto";
import { ImageMismatch } from "../errors.ts";
import { HeldDisk, type Target } from "./held-disk.ts";

/**
 * A raw disk image, written onto a disk as it streams in (the whole disk,
 * zeros and all: without a disk map). Every byte is hashed; the disk gets
 * it through HeldDisk (data written, zeros zeroed, the first and last MiB
 * held back), so until finish() has found the size and sha256 the deployer
 * named, the disk has no partition table and boots nothing. commit()
 * writes them.
 */
/** Data is examined and written in pieces this big. */
const PIECE = 4 * 2 ** 20;

export class ImageWriter {
  private readonly hash = createHash("sha256");
  private readonly piece = Buffer.allocUnsafe(PIECE);
  private readonly disk: HeldDisk;
  private filled = 0;
  /** Where the piece being filled starts in the image. */
  private pieceStart = 0;
  /** Bytes received (hashed once their piece is flushed). */
  private received = 0;

  constructor(
    target: Target,
    private readonly expect: { size: number; sha256: string },
  ) {
    this.disk = new HeldDisk(target, expect.size);
  }

  get bytesReceived() {
    return this.received;
  }

  /** Bytes written as data, and zeroed without writing. */
  get written() {
    return this.disk.written;
  }

  get zeroed() {
    return this.disk.zeroed;
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
    this.disk.flush();
    const sha256 = this.hash.digest("hex");
    if (this.received !== this.expect.size) throw new ImageMismatch(`the image ended after ${this.received} of its ${this.expect.size} bytes`);
    if (sha256 !== this.expect.sha256) throw new ImageMismatch(`the image's sha256 is ${sha256}, not ${this.expect.sha256} as the deployer said`);
    return { sha256, size: this.received };
  }

  /** Write the held-back first and last MiB: from now on the disk has the image's partition table. */
  commit() {
    this.disk.commit();
  }

  private flushPiece() {
    if (!this.filled) return;
    const data = this.piece.subarray(0, this.filled);
    this.hash.update(data);
    this.disk.put(data, this.pieceStart);
    this.pieceStart += data.length;
    this.filled = 0;
  }
}
