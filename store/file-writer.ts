import { write } from "node:fs";
import { dataRuns } from "../lib/sparse.ts";
import { Writeback } from "../lib/writeback.ts";

const pwrite = (fd: number, data: Uint8Array, position: number) =>
  new Promise<number>((resolve, reject) => write(fd, data, 0, data.length, position, (e, n) => (e ? reject(e) : resolve(n))));

/**
 * Sequential writes of a big file (a blob, a download). The writes run on
 * the I/O thread pool, one after another in the order they were issued, so
 * the caller's thread goes on receiving while the kernel copies the last
 * block into the page cache. They also start the disk's writeback as they
 * go (lib/writeback.ts).
 */
export class FileWriter {
  private readonly writeback: Writeback;
  /** The last write issued; the next one starts when it is done. */
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly fd: number,
    /** Offset of the next write (bytes already in the file when resuming). */
    public offset = 0,
  ) {
    this.writeback = new Writeback(fd, offset);
  }

  /**
   * Append `data` (keep it unchanged until the promise settles). Once a
   * write fails, every later one fails with the same error.
   */
  write(data: Uint8Array): Promise<void> {
    const at = this.offset;
    this.offset += data.length;
    const done = this.tail.then(async () => {
      for (let n = 0; n < data.length; ) n += await pwrite(this.fd, data.subarray(n), at + n);
      this.writeback.reached(at + data.length);
    });
    this.tail = done;
    return done;
  }

  /**
   * Append `data` as write() does, but leave its 64 KiB blocks of zeros as
   * holes (lib/sparse.ts): a raw disk image is mostly zeros, and writing
   * them costs most of its upload's time and disk space (Glance's
   * filesystem_thin_provisioning). The file's size covers a trailing hole
   * only once the owner truncates it to the full length.
   */
  writeThin(data: Uint8Array): Promise<void> {
    const start = this.offset;
    const writes = [this.tail]; // an earlier write's failure, even when this one writes nothing
    for (const [from, to] of dataRuns(data)) {
      this.offset = start + from;
      writes.push(this.write(data.subarray(from, to)));
    }
    this.offset = start + data.length;
    return Promise.all(writes).then(() => {});
  }

  /** Resolves when no write is in flight (whether they succeeded or not): then the fd may be closed. */
  settled(): Promise<void> {
    return this.tail.then(
      () => {},
      () => {},
    );
  }
}
