import { dlopen, FFIType } from "bun:ffi";
import { describeErrno } from "./errno.ts";

/**
 * An OS pipe (pipe2(2)), for a child process to read what this one writes
 * with plain blocking writeSync: Node and Bun hand out a child's stdin only
 * as a stream that keeps (or copies) every buffer written to it, where a
 * pipe's fd takes the bytes at once and the buffer can be reused.
 */
const O_CLOEXEC = 0o2000000;
const F_SETPIPE_SZ = 1031;

const libc = dlopen("libc.so.6", {
  pipe2: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
}).symbols;

/** Both ends, close-on-exec (a child gets the read end as its stdin by dup); the buffer raised towards `bytes` where allowed. */
export function osPipe(options: { bytes?: number } = {}): { read: number; write: number } {
  const fds = new Int32Array(2);
  if (libc.pipe2(fds, O_CLOEXEC) !== 0) throw new Error(`pipe2 failed: ${describeErrno()}`);
  // Fewer, larger writes: each wake-up of the reader costs, under emulation above all. Best effort (pipe-max-size).
  libc.fcntl(fds[1]!, F_SETPIPE_SZ, options.bytes ?? 1 << 20);
  return { read: fds[0]!, write: fds[1]! };
}
