import { dlopen, FFIType } from "bun:ffi";
import { write } from "node:fs";

/**
 * Sequential writes of a big file (a blob, a download). The writes run on
 * the I/O thread pool, one after another in the order they were issued, so
 * the caller's thread goes on receiving while the kernel copies the last
 * block into the page cache. They also start the disk's writeback as they
 * go (sync_file_range), so the disk writes while the network delivers and
 * the final fsync finds little left to do — with a lone fsync at the end,
 * the whole file would hit the disk only then.
 */
const libc = dlopen("libc.so.6", {
  sync_file_range: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.u32], returns: FFIType.i32 },
});
const SYNC_FILE_RANGE_WRITE = 2;
const WRITEBACK_EVERY = 32 << 20;

const pwrite = (fd: number, data: Uint8Array, position: number) =>
  new Promise<number>((resolve, reject) => write(fd, data, 0, data.length, position, (e, n) => (e ? reject(e) : resolve(n))));

export class FileWriter {
  private synced: number;
  /** The last write issued; the next one starts when it is done. */
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly fd: number,
    /** Offset of the next write (bytes already in the file when resuming). */
    public offset = 0,
  ) {
    this.synced = offset;
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
      const end = at + data.length;
      if (end - this.synced >= WRITEBACK_EVERY) {
        libc.symbols.sync_file_range(this.fd, this.synced, end - this.synced, SYNC_FILE_RANGE_WRITE);
        this.synced = end;
      }
    });
    this.tail = done;
    return done;
  }

  /** Resolves when no write is in flight (whether they succeeded or not): then the fd may be closed. */
  settled(): Promise<void> {
    return this.tail.then(
      () => {},
      () => {},
    );
  }

  /** Start over at `offset` (the file was truncated); waits for writes in flight. */
  async reset(offset: number) {
    await this.settled();
    this.tail = Promise.resolve();
    this.offset = this.synced = offset;
  }
}
