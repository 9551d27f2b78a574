import { dlopen, FFIType } from "bun:ffi";
import { closeSync, constants, fstatSync, type Stats } from "node:fs";
import { describeErrno, lastErrno } from "./errno.ts";

/**
 * Writing inside a directory tree that may hold symlinks pointing out of it
 * (a copy of a running root: var/run → /run), without ever following one.
 * Every directory is opened by openat2(2) with RESOLVE_BENEATH and
 * RESOLVE_NO_SYMLINKS: the kernel walks the path from the root's fd and
 * refuses a symlink or ".." anywhere on it, so no check of ours can be
 * raced or fooled. Files are then made by name in that directory's fd
 * (mkdirat, openat with O_NOFOLLOW, symlinkat, linkat, mknodat), and their
 * owners, modes and times set by name there, not following a final symlink.
 * Linux 5.6 or later; x86_64 and arm64 (one syscall number on both).
 */
const SYS_OPENAT2 = 437;
const RESOLVE_NO_XDEV = 0x01;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_BENEATH = 0x08;
// Generic values (x86_64 and arm64 alike); Node has no O_PATH.
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const ELOOP = 40;
const EXDEV = 18;
const ENOENT = 2;

const libc = dlopen("libc.so.6", {
  syscall: { args: [FFIType.i64, FFIType.i64, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  openat: { args: [FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.u32], returns: FFIType.i32 },
  mkdirat: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  unlinkat: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  symlinkat: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  linkat: { args: [FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  mknodat: { args: [FFIType.i32, FFIType.ptr, FFIType.u32, FFIType.u64], returns: FFIType.i32 },
  fchownat: { args: [FFIType.i32, FFIType.ptr, FFIType.u32, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  fchmodat: { args: [FFIType.i32, FFIType.ptr, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  utimensat: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
}).symbols;

const cstr = (s: string) => Buffer.from(`${s}\0`);

/** A path that would leave the root or pass through a symlink on the way. */
export class EscapesRoot extends Error {}

/** A call failed; `errno` says why. */
export class BeneathFailed extends Error {
  constructor(
    what: string,
    readonly errno: number,
  ) {
    super(`${what}: ${describeErrno(errno)}`);
  }
}

function check(result: number | bigint, what: () => string): number {
  const r = Number(result);
  if (r < 0) throw new BeneathFailed(what(), lastErrno());
  return r;
}

/** Linux's dev_t (glibc makedev()). */
export function makedev(major: number, minor: number): bigint {
  const M = BigInt(major);
  const m = BigInt(minor);
  return ((M & 0xfffff000n) << 32n) | ((M & 0xfffn) << 8n) | ((m & 0xffffff00n) << 12n) | (m & 0xffn);
}

/**
 * A directory of the tree, open as an O_PATH fd, and the calls that make or
 * change what is in it by name. `where` names it in messages.
 */
export class Dir {
  constructor(
    readonly fd: number,
    readonly where: string,
  ) {}

  private at(name: string) {
    return `${this.where}${name}`;
  }

  /** What `name` is, without following it; undefined when there is nothing. */
  lstat(name: string): Stats | undefined {
    const fd = Number(libc.openat(this.fd, cstr(name), O_PATH | O_CLOEXEC | constants.O_NOFOLLOW, 0));
    if (fd < 0) {
      const errno = lastErrno();
      if (errno === ENOENT) return undefined;
      throw new BeneathFailed(`looking at ${this.at(name)}`, errno);
    }
    try {
      return fstatSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  unlink(name: string, options: { dir?: boolean } = {}) {
    check(libc.unlinkat(this.fd, cstr(name), options.dir ? AT_REMOVEDIR : 0), () => `removing ${this.at(name)}`);
  }

  mkdir(name: string, mode = 0o700) {
    check(libc.mkdirat(this.fd, cstr(name), mode), () => `making directory ${this.at(name)}`);
  }

  /** A new regular file, open for writing: the name must be free (O_EXCL never follows a symlink). */
  create(name: string): number {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | O_CLOEXEC;
    return check(libc.openat(this.fd, cstr(name), flags, 0o600), () => `creating ${this.at(name)}`);
  }

  symlink(name: string, target: string) {
    check(libc.symlinkat(cstr(target), this.fd, cstr(name)), () => `making symlink ${this.at(name)}`);
  }

  /** A hard link `name` to `from`'s `fromName` (not following it if it is a symlink). */
  link(name: string, from: Dir, fromName: string) {
    check(libc.linkat(from.fd, cstr(fromName), this.fd, cstr(name), 0), () => `linking ${this.at(name)} to ${from.at(fromName)}`);
  }

  /** A device or fifo; `type` is the S_IF* bits. */
  mknod(name: string, type: number, dev: bigint = 0n) {
    check(libc.mknodat(this.fd, cstr(name), type | 0o600, dev), () => `making node ${this.at(name)}`);
  }

  chown(name: string, uid: number, gid: number) {
    check(libc.fchownat(this.fd, cstr(name), uid, gid, AT_SYMLINK_NOFOLLOW), () => `changing the owner of ${this.at(name)}`);
  }

  /** Follows a final symlink (Linux cannot change a symlink's mode): for what the caller just made or checked. */
  chmod(name: string, mode: number) {
    check(libc.fchmodat(this.fd, cstr(name), mode, 0), () => `changing the mode of ${this.at(name)}`);
  }

  /** Access and modification time, whole seconds, not following a final symlink. */
  utimes(name: string, seconds: number) {
    const times = new BigInt64Array([BigInt(seconds), 0n, BigInt(seconds), 0n]);
    check(libc.utimensat(this.fd, cstr(name), times, AT_SYMLINK_NOFOLLOW), () => `setting the times of ${this.at(name)}`);
  }

  /** A path naming `name` in this directory for the l*xattr calls: through the fd, so nothing on the way is resolved again. */
  procPath(name: string) {
    return `/proc/self/fd/${this.fd}/${name}`;
  }

  close() {
    closeSync(this.fd);
  }
}

/** The directory tree at `root`, whose paths are resolved only beneath it. */
export class Beneath {
  readonly root: Dir;

  constructor(readonly path: string) {
    const fd = check(libc.openat(-100 /* AT_FDCWD */, cstr(path), O_PATH | O_CLOEXEC | constants.O_DIRECTORY, 0), () => `opening ${path}`);
    this.root = new Dir(fd, "./");
  }

  /**
   * The directory at `rel` (relative, `a/b`; "" or "." for the root), opened
   * without following any symlink and without leaving the root. Throws
   * EscapesRoot when a component is a symlink, "..", or another mount.
   */
  dir(rel: string): Dir {
    const clean = rel === "." ? "" : rel.replace(/^\.\//, "").replace(/\/$/, "");
    if (!clean) return new Dir(check(libc.openat(this.root.fd, cstr("."), O_PATH | O_CLOEXEC | constants.O_DIRECTORY, 0), () => "opening ./"), "./");
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    const how = new BigUint64Array([
      BigInt(O_PATH | O_CLOEXEC | constants.O_DIRECTORY),
      0n,
      BigInt(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV),
    ]);
    const fd = Number(libc.syscall(SYS_OPENAT2, this.root.fd, cstr(clean), how, 24));
    if (fd >= 0) return new Dir(fd, `./${clean}/`);
    const errno = lastErrno();
    if (errno === ELOOP || errno === EXDEV)
      throw new EscapesRoot(`./${clean}/ is not a directory inside ${this.path}: a symlink, ".." or another filesystem is on its way (${describeErrno(errno)})`);
    throw new BeneathFailed(`opening ./${clean}/ beneath ${this.path}`, errno);
  }

  close() {
    this.root.close();
  }
}
