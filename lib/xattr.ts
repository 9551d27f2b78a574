import { dlopen, FFIType, ptr } from "bun:ffi";

/**
 * Extended attributes of a path without following symlinks (llistxattr /
 * lgetxattr from libc). Neither Node nor Bun exposes them, and spawning
 * getfattr per file would dominate the cost of walking a root.
 */
const libc = dlopen("libc.so.6", {
  llistxattr: { args: [FFIType.cstring, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  lgetxattr: { args: [FFIType.cstring, FFIType.cstring, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
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
