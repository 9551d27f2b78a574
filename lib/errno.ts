import { dlopen, FFIType, read } from "bun:ffi";
import { constants } from "node:os";

/**
 * errno after a libc call made through bun:ffi (flock, mount, a raw
 * syscall): read on the same thread, right after the call that failed.
 */
const libc = dlopen("libc.so.6", {
  __errno_location: { args: [], returns: FFIType.ptr },
}).symbols;

export function lastErrno(): number {
  const p = libc.__errno_location();
  return p ? read.i32(p, 0) : 0;
}

/** "EBUSY (errno 16)", for messages that name what failed. */
export function describeErrno(errno = lastErrno()): string {
  const name = Object.entries(constants.errno).find(([, n]) => n === errno)?.[0] ?? "unknown error";
  return `${name} (errno ${errno})`;
}

/** An errno from a libc call as the Error node:fs would throw (code, syscall, path), so that callers treat both alike. */
export function systemError(errno: number, syscall: string, path: string): Error & { code: string; errno: number; syscall: string; path: string } {
  const code = Object.entries(constants.errno).find(([, n]) => n === errno)?.[0] ?? "EUNKNOWN";
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, errno: -errno, syscall, path });
}
