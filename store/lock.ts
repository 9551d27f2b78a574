import { dlopen, FFIType } from "bun:ffi";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { StoreLocked } from "./errors.ts";

/**
 * One server owns a store directory: its records are cached in memory and
 * its per-image locks are in-process, so a second writer would race. An
 * flock on `store.lock` says so; the kernel drops it when the process dies,
 * even by SIGKILL, so there is no stale lock to clean up.
 */
const libc = dlopen("libc.so.6", { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
const LOCK_EX = 2;
const LOCK_NB = 4;

export function lockStoreDir(dir: string): () => void {
  const fd = openSync(join(dir, "store.lock"), "a");
  if (libc.symbols.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    closeSync(fd);
    throw new StoreLocked(dir);
  }
  return () => closeSync(fd);
}
