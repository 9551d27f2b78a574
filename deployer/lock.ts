import { dlopen, FFIType } from "bun:ffi";
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { StackBusy } from "./errors.ts";

/**
 * One ooo command changes a stack at a time: an flock on `lock` in the state
 * folder. The kernel drops it when the process dies, even by SIGKILL, so a
 * killed deploy leaves no stale lock — the next one resumes at once. The
 * holder writes who it is into the file, for the message others get, and
 * empties it when done.
 * (The descriptor is close-on-exec: daemons and VMs started under the lock
 * do not inherit it.)
 */
const libc = dlopen("libc.so.6", { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
const LOCK_EX = 2;
const LOCK_NB = 4;

export function lockStack(stateDir: string, command: string): () => void {
  const path = join(stateDir, "lock");
  const fd = openSync(path, "a+");
  if (libc.symbols.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    closeSync(fd);
    let holder = "unknown";
    try {
      holder = readFileSync(path, "utf8").trim() || holder;
    } catch {}
    throw new StackBusy(stateDir, holder);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `ooo ${command} (pid ${process.pid}, since ${new Date().toISOString()})\n`);
  let held = true;
  return () => {
    if (!held) return;
    // Released, the lock names nobody: a holder's pid left in the file would read as a stale lock.
    try {
      ftruncateSync(fd, 0);
    } catch {}
    closeSync(fd);
    held = false;
  };
}
