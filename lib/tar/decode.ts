import { BLOCK, type EntryType, type TarEntry } from "./encode.ts";

/**
 * Reading back what encode.ts writes: the header fields of a pax/ustar
 * block, pax records with their values as raw bytes (xattr values are
 * binary), and one whole entry of a canonical stream — its pax header, its
 * ustar header, its data and padding, nothing else. entries.ts reads
 * streams with the same field readers; decodeEntry is strict where a
 * writer must be (agents/takeover/write-entry.ts): it accepts only what
 * canonical.ts produces, so nothing in an entry goes unapplied.
 */
export class NotATarStream extends Error {}

export function cString(b: Buffer, start: number, length: number): string {
  const field = b.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString("utf8");
}

export function octalField(b: Buffer, start: number, length: number): number {
  const text = cString(b, start, length).trim();
  if (!/^[0-7]*$/.test(text)) throw new NotATarStream(`a header field holds ${JSON.stringify(text)}, not an octal number`);
  return text ? parseInt(text, 8) : 0;
}

/** `LEN KEY=VALUE\n` records; values as bytes. */
export function paxRecords(data: Buffer): [key: string, value: Buffer][] {
  const out: [string, Buffer][] = [];
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(data.subarray(at, space).toString("ascii"));
    if (!Number.isInteger(len) || len <= 0 || at + len > data.length || data[at + len - 1] !== 0x0a) throw new NotATarStream("a pax header record has no valid length");
    const record = data.subarray(space + 1, at + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq > 0) out.push([record.subarray(0, eq).toString("utf8"), record.subarray(eq + 1)]);
    at += len;
  }
  return out;
}

export const padded = (size: number) => Math.ceil(size / BLOCK) * BLOCK;

const TYPES: Record<string, EntryType> = { "0": "file", "\0": "file", "1": "hardlink", "2": "symlink", "3": "char", "4": "block", "5": "directory", "6": "fifo" };
const XATTR = "SCHILY.xattr.";
const NUMERIC = new Set(["uid", "gid", "size", "mtime"]);

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return octalField(block, 148, 8) === sum;
}

/**
 * One entry of a canonical stream, from exactly its bytes. Throws
 * NotATarStream for anything else: trailing or missing bytes, a bad
 * checksum, a record or type canonical.ts never writes.
 */
export function decodeEntry(bytes: Buffer): { entry: TarEntry; data: Buffer } {
  let at = 0;
  const block = () => {
    if (at + BLOCK > bytes.length) throw new NotATarStream(`the entry ends inside a header (${bytes.length} bytes)`);
    const b = bytes.subarray(at, at + BLOCK);
    if (!checksumOk(b)) throw new NotATarStream("a header's checksum is wrong");
    if (b.toString("latin1", 257, 265) !== "ustar\u000000") throw new NotATarStream("a header is not ustar");
    at += BLOCK;
    return b;
  };
  let header = block();
  const pax = new Map<string, Buffer>();
  const xattrs: [string, Buffer][] = [];
  if (String.fromCharCode(header[156]!) === "x") {
    const size = octalField(header, 124, 12);
    if (at + padded(size) > bytes.length) throw new NotATarStream("the entry ends inside its pax header");
    for (const [key, value] of paxRecords(bytes.subarray(at, at + size))) {
      if (key.startsWith(XATTR)) xattrs.push([key.slice(XATTR.length), Buffer.from(value)]);
      else if (key === "path" || key === "linkpath" || NUMERIC.has(key)) pax.set(key, value);
      else throw new NotATarStream(`a pax record ${JSON.stringify(key)} that a canonical root never holds`);
    }
    at += padded(size);
    header = block();
  }
  const type = TYPES[String.fromCharCode(header[156]!)];
  if (!type) throw new NotATarStream(`unsupported tar entry type ${JSON.stringify(String.fromCharCode(header[156]!))}`);
  const number = (key: string, start: number, length: number) => {
    const text = pax.get(key)?.toString("ascii");
    if (text === undefined) return octalField(header, start, length);
    if (!/^\d+$/.test(text)) throw new NotATarStream(`pax ${key} is ${JSON.stringify(text)}, not a whole number`);
    return Number(text);
  };
  const prefix = cString(header, 345, 155);
  const name = cString(header, 0, 100);
  const linkpath = pax.get("linkpath")?.toString("utf8") ?? cString(header, 157, 100);
  const size = number("size", 124, 12);
  if (type !== "file" && size !== 0) throw new NotATarStream(`a ${type} entry with ${size} bytes of data`);
  const entry: TarEntry = {
    path: pax.get("path")?.toString("utf8") ?? (prefix ? `${prefix}/${name}` : name),
    type,
    mode: octalField(header, 100, 8),
    uid: number("uid", 108, 8),
    gid: number("gid", 116, 8),
    size,
    mtime: number("mtime", 136, 12),
    ...(type === "hardlink" || type === "symlink" ? { linkpath } : {}),
    ...(type === "char" || type === "block" ? { devmajor: octalField(header, 329, 8), devminor: octalField(header, 337, 8) } : {}),
    ...(xattrs.length ? { xattrs } : {}),
  };
  if (at + padded(size) !== bytes.length) throw new NotATarStream(`${entry.path}: the entry takes ${at + padded(size)} bytes, not the ${bytes.length} it was given`);
  return { entry, data: bytes.subarray(at, at + size) };
}
