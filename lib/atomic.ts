import { dlopen, FFIType } from "bun:ffi";
import { closeSync, constants, fsyncSync, openSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Publish a file so that nobody ever sees half of it, even if the process is
 * killed with SIGKILL: the data goes into an anonymous O_TMPFILE inode in the
 * destination folder, is fsynced, and only then gets a name (linkat). A
 * killed writer leaves nothing behind — the kernel frees the unnamed inode.
 * Where O_TMPFILE is unsupported (some filesystems), fall back to a
 * `.NAME.partial-*` file renamed into place.
 */
const O_TMPFILE = 0o20000000 | constants.O_DIRECTORY;
const AT_FDCWD = -100;
const AT_SYMLINK_FOLLOW = 0x400;

const libc = dlopen("libc.so.6", {
  linkat: { args: [FFIType.i32, FFIType.cstring, FFIType.i32, FFIType.cstring, FFIType.i32], returns: FFIType.i32 },
});

function linkFd(fd: number, dest: string): boolean {
  const src = Buffer.from(`/proc/self/fd/${fd}\0`);
  return libc.symbols.linkat(AT_FDCWD, src, AT_FDCWD, Buffer.from(`${dest}\0`), AT_SYMLINK_FOLLOW) === 0;
}

/**
 * Call `write(path)` with a path to write the content to (a child process may
 * open it: it is `/proc/PID/fd/N` of this process), then give it the name `dest`.
 */
export async function publishAtomically(dest: string, write: (path: string) => Promise<void>, mode = 0o644) {
  const dir = dirname(dest);
  let fd: number | undefined;
  try {
    fd = openSync(dir, O_TMPFILE | constants.O_RDWR, mode);
  } catch {
    fd = undefined;
  }
  if (fd === undefined) {
    const partial = join(dir, `.${basename(dest)}.partial-${process.pid}-${Date.now()}`);
    try {
      await write(partial);
      const f = openSync(partial, "r");
      fsyncSync(f);
      closeSync(f);
      renameSync(partial, dest);
    } finally {
      rmSync(partial, { force: true });
    }
    return;
  }
  try {
    await write(`/proc/${process.pid}/fd/${fd}`);
    fsyncSync(fd);
    const staged = join(dir, `.${basename(dest)}.new-${process.pid}-${Date.now()}`);
    if (!linkFd(fd, staged)) throw new Error(`could not link the finished ${dest} into place`);
    renameSync(staged, dest);
  } finally {
    closeSync(fd);
  }
}
