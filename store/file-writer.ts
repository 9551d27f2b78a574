import { dlopen, FFIType } from "bun:ffi";
import { writeSync } from "node:fs";

/**
 * Sequential writes of a big file (a blob, a download) that also start the
 * disk's writeback as they go (sync_file_range), so the disk writes while
 * the network delivers and the final fsync finds little left to do — with
 * a lone fsync at the end, the whole file would hit the disk only then.
 */
const libc = dlopen("libc.so.6", {
  sync_file_range: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.u32], returns: FFIType.i32 },
});
const SYNC_FILE_RANGE_WRITE = 2;
const WRITEBACK_EVERY = 32 << 20;

export class FileWriter {
  private synced: number;

  constructor(
    readonly fd: number,
    /** Offset of the next write (bytes already in the file when resuming). */
    public offset = 0,
  ) {
    this.synced = offset;
  }

  write(data: Uint8Array) {
    for (let done = 0; done < data.length; ) done += writeSync(this.fd, data, done, data.length - done, this.offset + done);
    this.offset += data.length;
    if (this.offset - this.synced >= WRITEBACK_EVERY) {
      libc.symbols.sync_file_range(this.fd, this.synced, this.offset - this.synced, SYNC_FILE_RANGE_WRITE);
      this.synced = this.offset;
    }
  }
}
