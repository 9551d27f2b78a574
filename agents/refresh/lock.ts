import { dlopen, FFIType } from "bun:ffi";
import { closeSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { lastErrno } from "../../lib/errno.ts";
import { LockHeld } from "../errors.ts";

/**
 * os-refresh-config's lock: flock(LOCK_EX | LOCK_NB) on a file that is
 * never deleted, so a second run fails at once (exit 11, EAGAIN) instead of
 * queueing behind the first. The lock dies with the process, even on
 * SIGKILL. Node has no flock; libc's is called through bun:ffi, which the
 * compiled binary supports.
 */
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

const libc = dlopen("libc.so.6", {
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
});

export class Lock {
  private constructor(
    private fd: number | undefined,
    readonly path: string,
  ) {}

  /** Take the lock or throw LockHeld (another holder) / Error (anything else). */
  static acquire(path: string): Lock {
    const fd = openSync(path, "a", 0o644);
    if (libc.symbols.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
      const e = lastErrno();
      closeSync(fd);
      if (e === 11) throw new LockHeld(path);
      throw new Error(`Could not lock ${path}: errno ${e}`);
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `Locked by pid==${process.pid} at ${new Date().toISOString()}\n`);
    return new Lock(fd, path);
  }

  /** Empty the file (it only ever names a live holder) and let go. */
  release() {
    if (this.fd === undefined) return;
    try {
      ftruncateSync(this.fd, 0);
      libc.symbols.flock(this.fd, LOCK_UN);
    } finally {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}
