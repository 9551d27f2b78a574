import {
  closeSync,
  constants,
  existsSync,
  fchmodSync,
  fchownSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { log } from "../../lib/log.ts";
import { OutsideRoot, WriteFailed } from "../errors.ts";
import type { RenderedFile } from "./render.ts";

/**
 * Writing rendered files under the output root, with os-apply-config's
 * rules for what the file becomes (mode, owner and group from the file it
 * replaces, else 0644 and ours; the control file overrides; a symlink in the
 * file's place is replaced, not written through) and three guarantees the
 * original lacks:
 *
 *  - nothing lands outside the root: every directory on the way is resolved,
 *    symlinks included, and a path that leaves the root is refused before
 *    anything is written;
 *  - a reader never sees half a file: the new content goes to a temporary
 *    file in the same directory, is fsynced, then renamed over the old one,
 *    and the directory is fsynced;
 *  - an unchanged file is left alone (same inode, same mtime), so services
 *    watching it are not woken; only a differing mode or owner is fixed.
 */
export type WriteAction = "written" | "unchanged" | "deleted" | "not-created";

export interface WriteOutcome {
  path: string;
  action: WriteAction;
}

const inside = (root: string, p: string) => root === "/" || p === root || p.startsWith(root + "/");

/**
 * Where a path really points: symlinks followed as far as they exist, the
 * missing rest appended as plain names (what mkdir -p would create).
 */
export function resolveLoosely(path: string, hops = 0): string {
  if (hops > 40) throw new Error(`too many levels of symbolic links at ${path}`);
  try {
    return realpathSync(path);
  } catch {
    // fall through: some part is missing or dangling
  }
  let st: Stats | undefined;
  try {
    st = lstatSync(path);
  } catch {
    st = undefined;
  }
  if (st?.isSymbolicLink()) return resolveLoosely(resolve(dirname(path), readlinkSync(path)), hops + 1);
  const parent = dirname(path);
  if (parent === path) return path;
  return join(resolveLoosely(parent, hops + 1), basename(path));
}

interface Placement {
  /** The directory the file goes into, symlinks resolved, inside the root. */
  dir: string;
  /** The file's path in that directory. */
  target: string;
}

/** Check a file's place before anything is written. */
export function place(rootReal: string, relative: string): Placement {
  const shown = join(rootReal, relative);
  const dir = resolveLoosely(dirname(shown));
  if (!inside(rootReal, dir)) throw new OutsideRoot(shown, dir, rootReal);
  const target = join(dir, basename(relative));
  let st: Stats | undefined;
  try {
    st = lstatSync(target);
  } catch {
    st = undefined;
  }
  if (st?.isSymbolicLink()) {
    const points = resolveLoosely(target);
    if (!inside(rootReal, points)) throw new OutsideRoot(shown, points, rootReal);
  }
  return { dir, target };
}

function statFollow(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function sameBytes(path: string, body: Uint8Array): boolean {
  try {
    const st = lstatSync(path);
    if (!st.isFile() || st.size !== body.length) return false;
    return Buffer.compare(readFileSync(path), body) === 0;
  } catch {
    return false;
  }
}

function fsyncDir(dir: string) {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Write new content under a temporary name, fsync, then rename it into place. */
function replaceAtomically(p: Placement, body: Uint8Array, mode: number, uid: number, gid: number) {
  const tmp = join(p.dir, `.${basename(p.target)}.oac-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    for (let off = 0; off < body.length; ) off += writeSync(fd, body, off, body.length - off);
    // chown before chmod: a chown clears set-id bits, the mode must survive it.
    const st = lstatSync(tmp);
    if (st.uid !== uid || st.gid !== gid) fchownSync(fd, uid, gid);
    fchmodSync(fd, mode);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, p.target);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function writeFile(root: string, file: RenderedFile, touchedDirs: Set<string>): WriteOutcome {
  const rootReal = resolveLoosely(root);
  const p = place(rootReal, file.relative);
  const shown = join(root, file.relative);
  try {
    if (!file.control.allowEmpty && file.body.length === 0) {
      if (existsSync(p.target)) {
        log.info(`deleting ${shown}`);
        unlinkSync(p.target);
        touchedDirs.add(p.dir);
        return { path: shown, action: "deleted" };
      }
      log.info(`not creating empty ${shown}`);
      return { path: shown, action: "not-created" };
    }
    const old = statFollow(p.target);
    // os-apply-config: `mode = control.mode or existing`, so a mode of 0 keeps the old one.
    const mode = file.control.mode || (old ? old.mode & 0o7777 : 0o644);
    const uid = file.control.uid ?? old?.uid ?? process.geteuid!();
    const gid = file.control.gid ?? old?.gid ?? process.getegid!();

    if (sameBytes(p.target, file.body)) {
      const st = lstatSync(p.target);
      if (st.uid !== uid || st.gid !== gid) rechown(p.target, uid, gid);
      if ((st.mode & 0o7777) !== mode) chmod(p.target, mode);
      log.info(`unchanged ${shown}`);
      return { path: shown, action: "unchanged" };
    }
    log.info(`writing ${shown}`);
    mkdirSync(p.dir, { recursive: true });
    replaceAtomically(p, file.body, mode, uid, gid);
    touchedDirs.add(p.dir);
    return { path: shown, action: "written" };
  } catch (e) {
    throw new WriteFailed(shown, e);
  }
}

function rechown(path: string, uid: number, gid: number) {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    fchownSync(fd, uid, gid);
  } finally {
    closeSync(fd);
  }
}

function chmod(path: string, mode: number) {
  const fd = openSync(path, constants.O_RDONLY);
  try {
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}

/**
 * Write a rendered tree under `outputRoot` (folders created as files need
 * them, as os-apply-config's makedirs: no templates, no output folder). Every
 * file's place is checked before the first write, so a refused path leaves
 * the tree untouched.
 */
export function writeTree(outputRoot: string, files: RenderedFile[]): WriteOutcome[] {
  const rootReal = resolveLoosely(outputRoot);
  for (const f of files) place(rootReal, f.relative);
  const touched = new Set<string>();
  const outcomes = files.map((f) => writeFile(outputRoot, f, touched));
  for (const dir of touched) fsyncDir(dir);
  return outcomes;
}
