import { dlopen, FFIType } from "bun:ffi";

const libc = dlopen("libc.so.6", {
  sync_file_range: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.u32], returns: FFIType.i32 },
});
const SYNC_FILE_RANGE_WRITE = 2;
const WRITEBACK_EVERY = 4 << 20;

/**
 * Starts the disk's writeback of a big file as it is written
 * (sync_file_range, every 4 MiB), so the disk writes while the network
 * delivers and the final fsync finds little left to do — with a lone fsync
 * at the end, the whole file would hit the disk only then. Every 32 MiB left
 * up to 32 MiB for the final fsync: 12 ms of a 291 MiB upload's 0.35 s here,
 * against 2 ms.
 */
export class Writeback {
  constructor(
    readonly fd: number,
    private synced = 0,
  ) {}

  /** The file is written up to `end`. */
  reached(end: number) {
    if (end - this.synced < WRITEBACK_EVERY) return;
    libc.symbols.sync_file_range(this.fd, this.synced, end - this.synced, SYNC_FILE_RANGE_WRITE);
    this.synced = end;
  }
}
