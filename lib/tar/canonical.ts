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

/** One entry of the canonical stream: its path, its header bytes, and for a regular file where its data is. */
export interface CanonicalEntry {
  path: string;
  header: Buffer;
  data?: { path: string; size: number };
}

/**
 * The entry of one node of a tree, `tarPath` naming it in the stream;
 * undefined for a socket. `firstPathOf` (device:inode → path) holds the
 * regular files seen before it in stream order: a later path of one of
 * them is a hard link to the first.
 */
export function describeNode(fsPath: string, tarPath: string, options: CanonicalOptions, firstPathOf = new Map<string, string>()): { entry: TarEntry; st: Stats } | undefined {
  const st = lstatSync(fsPath);
  const type = typeOf(st);
  if (!type) return undefined;
  const entry: TarEntry = {
    path: type === "directory" && !tarPath.endsWith("/") ? `${tarPath}/` : tarPath,
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: 0,
    mtime: Math.min(Math.floor(st.mtimeMs / 1000), Math.floor(options.sourceDateEpoch)),
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
  return { entry, st };
}

/**
 * The canonical stream entry by entry, without the files' bytes: the walk
 * and the encoding, shared by canonicalTar (the bytes as buffers) and
 * agents/takeover/patch-verify.ts (the bytes straight into a hash, read
 * into one reused buffer). After the last entry comes END_OF_ARCHIVE.
 */
export function* canonicalEntries(root: string, options: CanonicalOptions): Generator<CanonicalEntry> {
  const firstPathOf = new Map<string, string>();
  // Explicit stack instead of recursion: deep trees must not blow the JS stack.
  const stack: { fsPath: string; tarPath: string; isRoot: boolean }[] = [{ fsPath: root, tarPath: "./", isRoot: true }];
  while (stack.length) {
    const { fsPath, tarPath, isRoot } = stack.pop()!;
    const node = describeNode(fsPath, tarPath, options, firstPathOf);
    if (!node) continue;
    const { entry, st } = node;
    yield { path: entry.path, header: encodeHeader(entry), ...(entry.type === "file" ? { data: { path: fsPath, size: st.size } } : {}) };

    if (entry.type === "directory") {
      const children = readdirSync(fsPath)
        .filter((name) => !(isRoot && name === "lost+found"))
        .sort(byteCompare);
      // Pushed in reverse so that the stack pops them in order.
      for (let i = children.length - 1; i >= 0; i--) {
        const name = children[i]!;
        stack.push({ fsPath: `${fsPath}/${name}`, tarPath: `${entry.path}${name}`, isRoot: false });
      }
    }
  }
}

/**
 * A file's bytes as its entry holds them, in pieces of at most CHUNK bytes
 * read into `buffer()` (a new one each time, or one reused once the piece is
 * consumed), then its padding.
 */
export function* fileData(data: { path: string; size: number }, buffer: (bytes: number) => Buffer): Generator<Buffer> {
  const fd = openSync(data.path, "r");
  try {
    let done = 0;
    while (done < data.size) {
      const want = Math.min(CHUNK, data.size - done);
      const buf = buffer(want);
      const n = readSync(fd, buf, 0, want, done);
      if (n <= 0) throw new TreeChanged(`${data.path} shrank while it was being read`);
      yield buf.subarray(0, n);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  const pad = padding(data.size);
  if (pad.length) yield pad;
}

export async function* canonicalTar(root: string, options: CanonicalOptions): AsyncGenerator<Buffer> {
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
  for (const entry of canonicalEntries(root, options)) {
    push(entry.header);
    if (entry.data)
      for (const piece of fileData(entry.data, (bytes) => Buffer.allocUnsafe(bytes))) {
        push(piece);
        if (pendingBytes >= CHUNK) yield take();
      }
    if (pendingBytes >= CHUNK) yield take();
  }
  push(END_OF_ARCHIVE);
  yield take();
}
