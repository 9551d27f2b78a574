import { closeSync, constants, writeSync } from "node:fs";
import { Beneath, BeneathFailed, Dir, EscapesRoot, makedev } from "../../lib/beneath.ts";
import { decodeEntry, NotATarStream } from "../../lib/tar/decode.ts";
import type { TarEntry } from "../../lib/tar/encode.ts";
import { lremovexattr, lsetxattr, lxattrNames } from "../../lib/xattr.ts";
import { UnsafePath } from "../errors.ts";

/**
 * Writes entries of a canonical root tar into a tree that is a copy of a
 * running root (patch-install.ts), as `tar -x` would, except that nothing is
 * ever written through a symlink of that tree: every directory is reached
 * beneath the root without following one (lib/beneath.ts), where GNU tar
 * followed the copy's var/run → /run onto the live system. Each entry's
 * header must name the path the image's index lists for those bytes.
 * Owners, modes, xattrs and mtimes land as canonical.ts reads them back;
 * directories get their mtimes last, once nothing more is written in them.
 */

const NAME_TYPE: Partial<Record<TarEntry["type"], number>> = { char: constants.S_IFCHR, block: constants.S_IFBLK, fifo: constants.S_IFIFO };

/** `./a/b/c` or `./a/b/` → the directory it is in (`a/b`) and its name; `./` → the root itself. */
function split(path: string): { parent: string; name: string } {
  const body = path.replace(/^\.\//, "").replace(/\/$/, "");
  if (!body) return { parent: "", name: "." };
  const cut = body.lastIndexOf("/");
  return cut < 0 ? { parent: "", name: body } : { parent: body.slice(0, cut), name: body.slice(cut + 1) };
}

/** The header must say what the index says these bytes are, in a form canonical.ts writes. */
function checkHeader(entry: TarEntry, expected: { path: string; hardlinkTo?: string }) {
  if (entry.path !== expected.path) throw new UnsafePath(`the bytes the image lists as ${JSON.stringify(expected.path)} are the tar entry ${JSON.stringify(entry.path)}`);
  if ((entry.type === "hardlink" ? entry.linkpath : undefined) !== expected.hardlinkTo)
    throw new UnsafePath(`${expected.path}: the index says it links to ${JSON.stringify(expected.hardlinkTo ?? null)}, its header ${JSON.stringify(entry.type === "hardlink" ? entry.linkpath : null)}`);
  if ((entry.type === "directory") !== entry.path.endsWith("/")) throw new UnsafePath(`${entry.path}: a ${entry.type} entry whose path ${entry.type === "directory" ? "lacks" : "has"} a trailing "/"`);
}

export class EntryWriter {
  private readonly tree: Beneath;
  /** Directory mtimes, set by finish(). */
  private readonly dirTimes: { parent: string; name: string; mtime: number }[] = [];

  constructor(root: string) {
    this.tree = new Beneath(root);
  }

  /** The directory `rel` of the tree, or UnsafePath naming `path` when reaching it would follow a symlink. */
  private dir(rel: string, path: string): Dir {
    try {
      return this.tree.dir(rel);
    } catch (e) {
      if (e instanceof EscapesRoot || (e instanceof BeneathFailed && e.errno === 20 /* ENOTDIR */))
        throw new UnsafePath(`${path} would be written through a symlink or non-directory of the copied root: ${e.message}`);
      throw e;
    }
  }

  /** The directory holding `path` (opened beneath the root; the caller closes it) and its name there. */
  locate(path: string): { dir: Dir; name: string; parent: string } {
    const { parent, name } = split(path);
    return { dir: this.dir(parent, path), name, parent };
  }

  /** Write the entry held by exactly `bytes` (already checked against the index's sha256) where the index says it goes. */
  write(bytes: Buffer, expected: { path: string; hardlinkTo?: string }) {
    let decoded;
    try {
      decoded = decodeEntry(bytes);
    } catch (e) {
      if (e instanceof NotATarStream) throw new UnsafePath(`the bytes the image lists as ${JSON.stringify(expected.path)} are not one canonical tar entry: ${e.message}`);
      throw e;
    }
    const { entry, data } = decoded;
    checkHeader(entry, expected);
    const { dir, name, parent } = this.locate(entry.path);
    try {
      this.place(dir, name, entry, data);
      if (entry.type === "hardlink") return; // the inode it shares has its attributes already
      dir.chown(name, entry.uid, entry.gid); // before the mode: a change of owner clears set-id bits
      if (entry.type !== "symlink") dir.chmod(name, entry.mode & 0o7777);
      this.setXattrs(dir, name, entry.xattrs ?? []);
      if (entry.type === "directory") this.dirTimes.push({ parent, name, mtime: entry.mtime });
      else dir.utimes(name, entry.mtime);
    } finally {
      dir.close();
    }
  }

  /** Make the node itself: a new one in place of what the copy had there, or the copy's directory kept. */
  private place(dir: Dir, name: string, entry: TarEntry, data: Buffer) {
    const existing = dir.lstat(name);
    if (entry.type === "directory") {
      if (existing?.isDirectory()) return;
      if (existing) dir.unlink(name);
      dir.mkdir(name);
      return;
    }
    // A directory in the way is removed only if empty: the plan removes one that becomes a file first.
    if (existing) dir.unlink(name, { dir: existing.isDirectory() });
    switch (entry.type) {
      case "file": {
        const fd = dir.create(name);
        try {
          for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
        } finally {
          closeSync(fd);
        }
        return;
      }
      case "symlink":
        return dir.symlink(name, entry.linkpath!);
      case "hardlink": {
        if (!entry.linkpath!.startsWith("./") || entry.linkpath!.split("/").some((p) => p === ".."))
          throw new UnsafePath(`${entry.path} links to ${JSON.stringify(entry.linkpath)}, which is not plainly inside the root`);
        const target = this.locate(entry.linkpath!);
        try {
          return dir.link(name, target.dir, target.name);
        } finally {
          target.dir.close();
        }
      }
      default:
        return dir.mknod(name, NAME_TYPE[entry.type]!, entry.type === "fifo" ? 0n : makedev(entry.devmajor ?? 0, entry.devminor ?? 0));
    }
  }

  /** Exactly the entry's xattrs: a kept directory may have others, a new node inherited ACLs. */
  private setXattrs(dir: Dir, name: string, xattrs: [string, Buffer][]) {
    const path = dir.procPath(name);
    const wanted = new Set(xattrs.map(([n]) => n));
    for (const old of lxattrNames(path)) if (!wanted.has(old)) lremovexattr(path, old);
    for (const [n, value] of xattrs) lsetxattr(path, n, value);
  }

  /** Set the directories' mtimes, deepest first: writing into a directory changed its own. */
  finish() {
    for (const { parent, name, mtime } of this.dirTimes.reverse()) {
      const dir = this.dir(parent, `./${parent}`);
      try {
        dir.utimes(name, mtime);
      } finally {
        dir.close();
      }
    }
    this.dirTimes.length = 0;
  }

  close() {
    this.tree.close();
  }
}
