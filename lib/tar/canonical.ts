import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from "node:fs";
import { lgetxattrs } from "../xattr.ts";
import { encodeHeader, END_OF_ARCHIVE, padding, type TarEntry } from "./encode.ts";

/**
 * The canonical form of a root tree: a pax tar stream whose bytes depend only
 * on the tree's content, modes, numeric owners, xattrs and (clamped) mtimes —
 * never on the filesystem it was read from, the order readdir returns, user
 * names or the clock. Its sha256 is an image's content address; the builder
 * writes it and a node recomputes it from its running root, so both must use
 * this one function.
 *
 * - depth-first, each directory's children sorted by the bytes of their names
 *   (GNU tar --sort=name), a directory before its contents, paths `./…`;
 * - mtimes clamped to SOURCE_DATE_EPOCH, whole seconds; no atime/ctime;
 * - numeric uid/gid, no user or group names;
 * - hard links: the first path in this order carries the data, later ones link;
 * - sockets are skipped (they cannot be archived), and so is a top-level
 *   `lost+found` (an artifact of mkfs, not content).
 */
export interface CanonicalOptions {
  sourceDateEpoch: number;
}

export class TreeChanged extends Error {}

const CHUNK = 1 << 20;

function byteCompare(a: string, b: string) {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function typeOf(st: Stats): TarEntry["type"] | undefined {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symlink";
  if (st.isCharacterDevice()) return "char";
  if (st.isBlockDevice()) return "block";
  if (st.isFIFO()) return "fifo";
  return undefined; // socket
}

/** Linux's dev_t encoding (glibc major()/minor()). */
function major(rdev: number) {
  return Number(((BigInt(rdev) >> 32n) & 0xfffff000n) | ((BigInt(rdev) >> 8n) & 0xfffn));
}
function minor(rdev: number) {
  return Number(((BigInt(rdev) >> 12n) & 0xffffff00n) | (BigInt(rdev) & 0xffn));
}

export async function* canonicalTar(root: string, options: CanonicalOptions): AsyncGenerator<Buffer> {
  const sde = Math.floor(options.sourceDateEpoch);
  const firstPathOf = new Map<string, string>();
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const push = (b: Buffer) => {
    pending.push(b);
    pendingBytes += b.length;
  };
  const take = () => {
    const out = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    return out;
  };

  // Explicit stack instead of recursion: deep trees must not blow the JS stack.
  const stack: { fsPath: string; tarPath: string; isRoot: boolean }[] = [{ fsPath: root, tarPath: "./", isRoot: true }];
  while (stack.length) {
    const { fsPath, tarPath, isRoot } = stack.pop()!;
    const st = lstatSync(fsPath);
    const type = typeOf(st);
    if (!type) continue;
    const entry: TarEntry = {
      path: type === "directory" && !tarPath.endsWith("/") ? `${tarPath}/` : tarPath,
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: 0,
      mtime: Math.min(Math.floor(st.mtimeMs / 1000), sde),
      xattrs: lgetxattrs(fsPath),
    };
    if (type === "symlink") entry.linkpath = readlinkSync(fsPath);
    if (type === "char" || type === "block") {
      entry.devmajor = major(st.rdev);
      entry.devminor = minor(st.rdev);
    }
    if (type === "file" && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = firstPathOf.get(key);
      if (first) {
        entry.type = "hardlink";
        entry.linkpath = first;
      } else firstPathOf.set(key, tarPath);
    }
    if (entry.type === "file") entry.size = st.size;
    push(encodeHeader(entry));

    if (entry.type === "file") {
      const fd = openSync(fsPath, "r");
      try {
        let done = 0;
        while (done < st.size) {
          const want = Math.min(CHUNK, st.size - done);
          const buf = Buffer.allocUnsafe(want);
          const n = readSync(fd, buf, 0, want, done);
          if (n <= 0) throw new TreeChanged(`${fsPath} shrank while it was being read`);
          push(n === want ? buf : buf.subarray(0, n));
          done += n;
          if (pendingBytes >= CHUNK) yield take();
        }
        push(padding(st.size));
      } finally {
        closeSync(fd);
      }
    }
    if (pendingBytes >= CHUNK) yield take();

    if (type === "directory") {
      const children = readdirSync(fsPath)
        .filter((name) => !(isRoot && name === "lost+found"))
        .sort(byteCompare);
      // Pushed in reverse so that the stack pops them in order.
      for (let i = children.length - 1; i >= 0; i--) {
        const name = children[i]!;
        const childFs = `${fsPath}/${name}`;
        const childTar = `${entry.path}${name}`;
        stack.push({ fsPath: childFs, tarPath: childTar, isRoot: false });
      }
    }
  }
  push(END_OF_ARCHIVE);
  yield take();
}
