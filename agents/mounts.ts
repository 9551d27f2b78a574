import { dlopen, FFIType } from "bun:ffi";
import { closeSync, openSync, readFileSync } from "node:fs";
import { describeErrno } from "../lib/errno.ts";

/**
 * Mounts by the syscalls themselves (bun:ffi into libc), not by mount,
 * umount and sync processes: the takeover and mark-good change the boot
 * partition and the slots a dozen times per upgrade, the collector mounts
 * the config drive at every start, and under emulation each process costs
 * a node about 0.1 s of CPU. Our mounts carry no options beyond these
 * flags, so nothing that mount(8) would merge from the mount table is lost.
 */
const MS_RDONLY = 1;
const MS_SYNCHRONOUS = 16;
const MS_REMOUNT = 32;

const libc = dlopen("libc.so.6", {
  mount: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
  umount2: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  syncfs: { args: [FFIType.i32], returns: FFIType.i32 },
});

const cstring = (s: string) => Buffer.from(`${s}\0`);

/** Whether something is mounted on `dir` (from /proc/self/mountinfo: no findmnt process). */
export function isMountPoint(dir: string): boolean {
  // Field 5 is the mount point, with spaces and the like escaped as \ooo.
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[4] === dir);
}

export interface MountMode {
  readOnly?: boolean;
  /** Every write reaches the disk before the call returns (the boot partition while it is changed). */
  sync?: boolean;
}

const flagsOf = (mode: MountMode) => (mode.readOnly ? MS_RDONLY : 0) | (mode.sync ? MS_SYNCHRONOUS : 0);

export function mountFs(device: string, dir: string, fstype: string, mode: MountMode = {}) {
  if (libc.symbols.mount(cstring(device), cstring(dir), cstring(fstype), flagsOf(mode), null) !== 0)
    throw new Error(`mounting ${device} (${fstype}) on ${dir} failed: ${describeErrno()}`);
}

/** Change a mount between read-only and read-write (sync or not) in place. */
export function remount(dir: string, mode: MountMode) {
  if (libc.symbols.mount(null, cstring(dir), null, MS_REMOUNT | flagsOf(mode), null) !== 0)
    throw new Error(`remounting ${dir} ${mode.readOnly ? "read-only" : "read-write"} failed: ${describeErrno()}`);
}

const MNT_DETACH = 2;

/** `lazy`: detach now, and let the kernel finish once nothing uses it (umount -l). */
export function unmount(dir: string, options: { lazy?: boolean } = {}) {
  if (libc.symbols.umount2(cstring(dir), options.lazy ? MNT_DETACH : 0) !== 0) throw new Error(`unmounting ${dir} failed: ${describeErrno()}`);
}

/** Unmount `dir` if something is mounted there (a mount point the agent reuses, left from an earlier run). */
export function unmountIfMounted(dir: string) {
  if (isMountPoint(dir)) unmount(dir);
}

/** Write out everything dirty of the filesystem that holds `path` (sync -f). */
export function syncFilesystemOf(path: string) {
  const fd = openSync(path, "r");
  try {
    if (libc.symbols.syncfs(fd) !== 0) throw new Error(`syncing the filesystem of ${path} failed: ${describeErrno()}`);
  } finally {
    closeSync(fd);
  }
}
