/**
 * POSIX pax/ustar header encoding for the canonical root stream.
 *
 * We encode headers ourselves instead of through tar-stream's packer because
 * the canonical form must carry binary xattr values (security.capability,
 * ACLs) byte for byte in SCHILY.xattr records, as GNU tar reads them, and must
 * keep mode 0 files; tar-stream encodes pax values as UTF-8 text and replaces
 * a zero mode with a default. Everything here is a pure function of the
 * entry, so the same tree always gives the same bytes.
 */

export type EntryType = "file" | "hardlink" | "symlink" | "char" | "block" | "directory" | "fifo";

const TYPEFLAG: Record<EntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  directory: "5",
  fifo: "6",
};

export interface TarEntry {
  /** Path inside the archive, e.g. `./etc/passwd` or `./etc/` for a directory. */
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkpath?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: [string, Buffer][];
}

export const BLOCK = 512;

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

function octal(value: number, width: number): string {
  // width includes the terminating NUL
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

function splitUstarName(path: string): { name: string; prefix: string } | null {
  const bytes = Buffer.byteLength(path);
  if (bytes !== path.length) return null; // non-ASCII goes to pax
  if (bytes <= 100) return { name: path, prefix: "" };
  // prefix + "/" + name, cut at a slash, name ≤ 100, prefix ≤ 155
  const body = path.endsWith("/") ? path.slice(0, -1) : path;
  const trailing = path.endsWith("/") ? "/" : "";
  for (let i = body.indexOf("/"); i !== -1; i = body.indexOf("/", i + 1)) {
    const prefix = body.slice(0, i);
    const name = body.slice(i + 1) + trailing;
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return { name, prefix };
  }
  return null;
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "%d %s=%s\n" where %d counts the whole record, its own digits included.
  const rest = 1 + Buffer.byteLength(key) + 1 + value.length + 1;
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from("\n")]);
}

function ustarHeader(fields: {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(fields.name, 0, 100, "utf8");
  b.write(octal(fields.mode & 0o7777, 8), 100, "ascii");
  b.write(octal(fields.uid, 8), 108, "ascii");
  b.write(octal(fields.gid, 8), 116, "ascii");
  b.write(octal(fields.size, 12), 124, "ascii");
  b.write(octal(fields.mtime, 12), 136, "ascii");
  b.write("        ", 148, "ascii");
  b.write(fields.typeflag, 156, "ascii");
  b.write(fields.linkname, 157, 100, "utf8");
  b.write("ustar\0", 257, "ascii");
  b.write("00", 263, "ascii");
  b.write(octal(fields.devmajor, 8), 329, "ascii");
  b.write(octal(fields.devminor, 8), 337, "ascii");
  b.write(fields.prefix, 345, 155, "utf8");
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(octal(sum, 7) + " ", 148, "ascii");
  return b;
}

export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

function basenameOf(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1) || ".";
}

/** The header block(s) of one entry: a pax extended header when needed, then ustar. */
export function encodeHeader(e: TarEntry): Buffer {
  const records: Buffer[] = [];
  const split = splitUstarName(e.path);
  if (!split) records.push(paxRecord("path", Buffer.from(e.path)));
  const linkpath = e.linkpath ?? "";
  const linkFits = Buffer.byteLength(linkpath) === linkpath.length && linkpath.length <= 100;
  if (!linkFits) records.push(paxRecord("linkpath", Buffer.from(linkpath)));
  for (const [key, value, max] of [
    ["uid", e.uid, MAX_OCTAL_7],
    ["gid", e.gid, MAX_OCTAL_7],
    ["size", e.size, MAX_OCTAL_11],
    ["mtime", e.mtime, MAX_OCTAL_11],
  ] as const) {
    if (value > max) records.push(paxRecord(key, Buffer.from(String(value))));
  }
  for (const [name, value] of e.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${name}`, value));

  const clamp = (v: number, max: number) => Math.min(v, max);
  const main = ustarHeader({
    name: split ? split.name : asciiTail(e.path, 100),
    prefix: split ? split.prefix : "",
    mode: e.mode,
    uid: clamp(e.uid, MAX_OCTAL_7),
    gid: clamp(e.gid, MAX_OCTAL_7),
    size: clamp(e.size, MAX_OCTAL_11),
    mtime: clamp(e.mtime, MAX_OCTAL_11),
    typeflag: TYPEFLAG[e.type],
    linkname: linkFits ? linkpath : asciiTail(linkpath, 100),
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
  });
  if (records.length === 0) return main;

  const body = Buffer.concat(records);
  const paxName = asciiTail(`./PaxHeaders/${basenameOf(e.path)}`, 100);
  const pax = ustarHeader({
    name: paxName,
    prefix: "",
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: clamp(e.mtime, MAX_OCTAL_11),
    typeflag: "x",
    linkname: "",
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([pax, body, padding(body.length), main]);
}

/** A short ASCII stand-in for a name carried in full by pax. */
function asciiTail(s: string, max: number): string {
  const ascii = s.replace(/[^\x20-\x7e]/g, "_");
  return ascii.length <= max ? ascii : ascii.slice(ascii.length - max);
}

/** Two zero blocks end the archive. */
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);
