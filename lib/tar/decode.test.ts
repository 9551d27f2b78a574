import { describe, expect, test } from "bun:test";
import { decodeEntry, NotATarStream } from "./decode.ts";
import { BLOCK, encodeHeader, padding, type TarEntry } from "./encode.ts";

/** decodeEntry reads back exactly what encodeHeader writes, and nothing else. */
const bytesOf = (entry: TarEntry, data: Buffer = Buffer.alloc(0)) => Buffer.concat([encodeHeader(entry), data, padding(data.length)]);
const base = { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_704_067_200 };

const raw: [string, TarEntry, Buffer?][] = [
  ["a file", { ...base, path: "./etc/passwd", type: "file", size: 5 }, Buffer.from("root\n")],
  ["an empty file, mode 0", { ...base, path: "./empty", type: "file", mode: 0 }],
  ["a directory with set-gid", { ...base, path: "./var/mail/", type: "directory", mode: 0o2775, gid: 8 }],
  ["a symlink with a long target (pax linkpath)", { ...base, path: "./l", type: "symlink", mode: 0o777, linkpath: `/${"t".repeat(150)}` }],
  ["a hard link", { ...base, path: "./usr/bin/b", type: "hardlink", linkpath: "./usr/bin/a" }],
  ["a char device", { ...base, path: "./dev/null", type: "char", devmajor: 1, devminor: 3 }],
  ["a block device", { ...base, path: "./dev/vda", type: "block", devmajor: 254, devminor: 0 }],
  ["a fifo", { ...base, path: "./run/initctl", type: "fifo", mode: 0o600 }],
  ["a long non-ASCII path (pax path)", { ...base, path: `./${"ü".repeat(80)}/${"n".repeat(120)}`, type: "file", size: 1 }, Buffer.from("x")],
  ["big owner ids (pax uid, gid)", { ...base, path: "./owned", type: "file", uid: 3_000_000, gid: 4_000_000 }],
  [
    "binary xattrs (pax SCHILY.xattr)",
    { ...base, path: "./usr/bin/ping", type: "file", size: 2, xattrs: [["security.capability", Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0xff, 0x0a, 0x3d])], ["user.note", Buffer.from("a=b\n")]] },
    Buffer.from("\x7fE"),
  ],
];
// Every row with its data (test.each passes a callback in place of a missing argument).
const cases = raw.map(([what, entry, data]): [string, TarEntry, Buffer] => [what, entry, data ?? Buffer.alloc(0)]);

describe("decodeEntry", () => {
  test.each(cases)("%s", (_, entry, data) => {
    const decoded = decodeEntry(bytesOf(entry, data));
    expect(decoded.entry).toEqual(entry);
    expect(Buffer.compare(decoded.data, data)).toBe(0);
  });

  test("bytes beyond the entry, or too few, are refused", () => {
    const bytes = bytesOf({ ...base, path: "./a", type: "file", size: 3 }, Buffer.from("abc"));
    expect(() => decodeEntry(Buffer.concat([bytes, bytesOf({ ...base, path: "./b", type: "file" })]))).toThrow(NotATarStream);
    expect(() => decodeEntry(bytes.subarray(0, bytes.length - BLOCK))).toThrow(NotATarStream);
  });

  test("a header whose checksum does not add up is refused", () => {
    const bytes = bytesOf({ ...base, path: "./a", type: "file" });
    bytes[0] = "b".charCodeAt(0);
    expect(() => decodeEntry(bytes)).toThrow(/checksum/);
  });

  test("what canonical.ts never writes is refused: GNU long names, other pax records, data on a symlink", () => {
    const gnu = bytesOf({ ...base, path: "./a", type: "file" });
    gnu[156] = "L".charCodeAt(0);
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : gnu[i]!;
    gnu.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
    expect(() => decodeEntry(gnu)).toThrow(/unsupported tar entry type/);
    // A pax header with an atime record: encodeHeader writes it for an mtime too big for octal; rename that key.
    const pax = bytesOf({ ...base, path: "./a", type: "file", mtime: 2 ** 40 });
    const at = pax.indexOf("mtime=");
    pax.write("atime", at, "ascii");
    expect(() => decodeEntry(pax)).toThrow(/"atime"/);
  });
});
