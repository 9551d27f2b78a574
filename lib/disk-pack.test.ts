import { afterEach, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packedBytes } from "../wire/disk-map.ts";
import { mapDisk } from "./disk-map.ts";
import { packDisk } from "./disk-pack.ts";
import { unpackFrame } from "./zstd-frame.ts";

const MiB = 2 ** 20;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** An 8 MiB disk: text-like data (a random KiB repeated) over 3 MiB from 1 MiB, random bytes (they do not compress) at 6 MiB. */
function disk() {
  const bytes = Buffer.alloc(8 * MiB);
  const kib = randomBytes(1024);
  for (let at = MiB; at < 4 * MiB; at += 1024) kib.copy(bytes, at);
  randomBytes(256 * 1024).copy(bytes, 6 * MiB);
  const dir = mkdtempSync(join(tmpdir(), "ooo-disk-pack-"));
  dirs.push(dir);
  const file = join(dir, "disk.raw");
  writeFileSync(file, bytes);
  return { dir, file, bytes, size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
}

test("every chunk becomes one zstd frame of the pack, in chunk order; each frame unpacks to its chunk", async () => {
  const d = disk();
  const map = mapDisk(d.file, d, { chunkBytes: MiB });
  const packed = await packDisk(d.file, map, join(d.dir, "pack"));
  const pack = readFileSync(join(d.dir, "pack"));
  expect(packed.chunks.map(({ packed: _, ...c }) => c)).toEqual(map.chunks);
  expect(packedBytes(packed)).toBe(pack.length);
  for (const c of packed.chunks) {
    const f = c.packed!;
    const frame = new Uint8Array(pack.subarray(f.offset, f.offset + f.length)).buffer;
    const { digest, bytes } = unpackFrame(packed.hash, frame, f.digest, c.length);
    expect(digest).toBe(f.digest);
    expect(Buffer.from(bytes).equals(d.bytes.subarray(c.offset, c.offset + c.length))).toBe(true);
  }
  // The text-like MiBs shrink to almost nothing; the random ones do not grow much.
  expect(packed.chunks.filter((c) => c.offset < 4 * MiB && c.offset >= MiB).every((c) => c.packed!.length < c.length / 50)).toBe(true);
  expect(packed.chunks.at(-1)!.packed!.length).toBeLessThan(packed.chunks.at(-1)!.length * 1.01);
});

test("the same disk gives the same pack and map", async () => {
  const d = disk();
  const map = mapDisk(d.file, d, { chunkBytes: MiB });
  const a = await packDisk(d.file, map, join(d.dir, "a"));
  const b = await packDisk(d.file, map, join(d.dir, "b"));
  expect(b).toEqual(a);
  expect(readFileSync(join(d.dir, "b")).equals(readFileSync(join(d.dir, "a")))).toBe(true);
});

test("a frame is decompressed only when it is the digest named, and only to the chunk's length", () => {
  const chunk = Buffer.alloc(MiB, 7);
  const frame = new Uint8Array(Bun.zstdCompressSync(chunk)).buffer;
  const digest = createHash("sha512-256").update(new Uint8Array(frame)).digest("hex");
  // Another digest: the frame comes back as it is, not decompressed.
  const refused = unpackFrame("sha512-256", frame.slice(0), "0".repeat(64), MiB);
  expect(refused.digest).toBe(digest);
  expect(refused.bytes.byteLength).toBe(frame.byteLength);
  expect(() => unpackFrame("sha512-256", frame.slice(0), digest, MiB - 1)).toThrow(`the frame decompressed to ${MiB} bytes, not the chunk's ${MiB - 1}`);
  expect(Buffer.from(unpackFrame("sha512-256", frame, digest, MiB).bytes).equals(chunk)).toBe(true);
});
