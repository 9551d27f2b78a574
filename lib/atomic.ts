import { dlopen, FFIType } from "bun:ffi";
import { closeSync, constants, fsyncSync, openSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { lastErrno, systemError } from "./errno.ts";

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
 * Give an unnamed file its name `dest`, replacing what was there: linked
 * under a temporary name beside it, then renamed over it. A rename that
 * fails (dest is a folder, the disk is read-only) takes the temporary name
 * away again: nothing is left behind.
 */
function linkInto(fd: number, dest: string) {
  const staged = join(dirname(dest), `.${basename(dest)}.new-${process.pid}-${Date.now()}`);
  if (!linkFd(fd, staged)) throw systemError(lastErrno(), "link", dest);
  try {
    renameSync(staged, dest);
  } catch (e) {
    rmSync(staged, { force: true });
    throw e;
  }
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
      fsyncDir(dir);
    } finally {
      rmSync(partial, { force: true });
    }
    return;
  }
  try {
    await write(`/proc/${process.pid}/fd/${fd}`);
    fsyncSync(fd);
    linkInto(fd, dest);
    fsyncDir(dir);
  } finally {
    closeSync(fd);
  }
}

/** A file being written that has no name yet (see stageFile). */
export interface StagedFile {
  /** Open for reading and writing. */
  readonly fd: number;
  /** A path to the content that child processes can open. */
  readonly path: string;
  /**
   * Give the content its name: fsync it (unless `durable` is false), link it
   * as `dest` (replacing what was there) and fsync dest's folder. The fd is
   * closed afterwards.
   */
  publish(dest: string, options?: { durable?: boolean }): void;
  /** Drop the content; nothing remains. */
  discard(): void;
}

/**
 * Like publishAtomically, for writers that learn the destination name only
 * at the end — a content-addressed blob is named by the digest of its last
 * byte. `dir` must be on the filesystem of every later `dest`.
 */
export function stageFile(dir: string, mode = 0o644): StagedFile {
  let fd: number;
  let partial: string | undefined;
  try {
    fd = openSync(dir, O_TMPFILE | constants.O_RDWR, mode);
  } catch {
    partial = join(dir, `.partial-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    fd = openSync(partial, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, mode);
  }
  let open = true;
  const close = () => {
    if (open) closeSync(fd);
    open = false;
  };
  return {
    fd,
    path: partial ?? `/proc/${process.pid}/fd/${fd}`,
    publish(dest, options = {}) {
      try {
        if (options.durable !== false) fsyncSync(fd);
        if (partial) renameSync(partial, dest);
        else {
          linkInto(fd, dest);
        }
        partial = undefined;
        if (options.durable !== false) fsyncDir(dirname(dest));
      } finally {
        if (partial) rmSync(partial, { force: true });
        close();
      }
    },
    discard() {
      close();
      if (partial) rmSync(partial, { force: true });
    },
  };
}

/** Make a folder's entries (a new name, a rename) durable. */
export function fsyncDir(dir: string) {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
