import { dlopen, FFIType, ptr } from "bun:ffi";
import { describeErrno } from "./errno.ts";

/**
 * Extended attributes of a path without following symlinks (llistxattr /
 * lgetxattr / lsetxattr / lremovexattr from libc). Neither Node nor Bun
 * exposes them, and spawning getfattr per file would dominate the cost of
 * walking a root.
 */
const libc = dlopen("libc.so.6", {
  llistxattr: { args: [FFIType.cstring, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  lgetxattr: { args: [FFIType.cstring, FFIType.cstring, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  lsetxattr: { args: [FFIType.cstring, FFIType.cstring, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  lremovexattr: { args: [FFIType.cstring, FFIType.cstring], returns: FFIType.i32 },
});

const cstr = (s: string) => Buffer.from(s + "\0");
let listBuf = Buffer.alloc(4096);
let valueBuf = Buffer.alloc(4096);

function listNames(path: Buffer): string[] {
  for (;;) {
    const n = Number(libc.symbols.llistxattr(path, ptr(listBuf), listBuf.length));
    if (n < 0) {
      // ERANGE: the list grew between calls; ENOTSUP/ENODATA and others: none.
      const size = Number(libc.symbols.llistxattr(path, null, 0));
      if (size > listBuf.length) {
        listBuf = Buffer.alloc(size * 2);
        continue;
      }
      return [];
    }
    if (n === 0) return [];
    return listBuf
      .subarray(0, n - 1)
      .toString("latin1")
      .split("\0")
      .map((s) => Buffer.from(s, "latin1").toString("utf8"));
  }
}

/** All xattrs of `path` (not following a final symlink), sorted by name. */
export function lgetxattrs(path: string): [name: string, value: Buffer][] {
  const p = cstr(path);
  const names = listNames(p);
  const out: [string, Buffer][] = [];
  for (const name of names.sort()) {
    const n = cstr(name);
    for (;;) {
      const len = Number(libc.symbols.lgetxattr(p, n, ptr(valueBuf), valueBuf.length));
      if (len >= 0) {
        out.push([name, Buffer.from(valueBuf.subarray(0, len))]);
        break;
      }
      const size = Number(libc.symbols.lgetxattr(p, n, null, 0));
      if (size > valueBuf.length) {
        valueBuf = Buffer.alloc(size * 2);
        continue;
      }
      break; // vanished or unreadable
    }
  }
  return out;
}

/** The names of `path`'s xattrs (not following a final symlink). */
export function lxattrNames(path: string): string[] {
  return listNames(cstr(path));
}

/** Set one xattr of `path` (not following a final symlink). */
export function lsetxattr(path: string, name: string, value: Buffer) {
  const bytes = value.length ? value : Buffer.alloc(1); // a pointer even for an empty value
  if (libc.symbols.lsetxattr(cstr(path), cstr(name), ptr(bytes), value.length, 0) !== 0) throw new Error(`setting xattr ${name} of ${path}: ${describeErrno()}`);
}

/** Remove one xattr of `path` (not following a final symlink). */
export function lremovexattr(path: string, name: string) {
  if (libc.symbols.lremovexattr(cstr(path), cstr(name)) !== 0) throw new Error(`removing xattr ${name} of ${path}: ${describeErrno()}`);
}
