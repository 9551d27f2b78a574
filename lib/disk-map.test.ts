import { afterEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { zeroRanges } from "../wire/disk-map.ts";
import { checkDiskMap, mapDisk } from "./disk-map.ts";

const K64 = 64 * 1024;
const MiB = 2 ** 20;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A 12 MiB disk: data at 0 (4 KiB), a run over 2.5 MiB from 1 MiB, one byte at 4 MiB + 70,000 (under 1 MiB after it), a block at 9 MiB, the last 100 bytes. */
function disk(): { file: string; bytes: Buffer; sha256: string; size: number } {
  const bytes = Buffer.alloc(12 * MiB);
  randomBytes(4096).copy(bytes, 0);
  randomBytes(2.5 * MiB).copy(bytes, MiB);
  bytes[4 * MiB + 70_000] = 1;
  randomBytes(K64).copy(bytes, 9 * MiB);
  randomBytes(100).copy(bytes, bytes.length - 100);
  const dir = mkdtempSync(join(tmpdir(), "ooo-disk-map-"));
  dirs.push(dir);
  const file = join(dir, "disk.raw");
  writeFileSync(file, bytes);
  return { file, bytes, size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
}

const chunkDigest = (b: Uint8Array) => createHash("sha512-256").update(b).digest("hex");

describe("the disk map of a raw disk", () => {
  test("data blocks become chunks: close runs merged, long runs cut, each with its SHA-512/256 digest", () => {
    const d = disk();
    const map = mapDisk(d.file, d, { chunkBytes: 2 * MiB, mergeGap: MiB });
    expect(map.disk).toEqual({ size: d.size, sha256: d.sha256 });
    expect(map.chunks.map((c) => [c.offset, c.length])).toEqual([
      // 0..64K, then 1 MiB..3.5 MiB and the block at 4 MiB+64K: gaps of under 1 MiB, one run, cut at 2 MiB.
      [0, 2 * MiB],
      [2 * MiB, 2 * MiB],
      [4 * MiB, 2 * K64],
      // 9 MiB is 5 MiB further: a run of its own; the last block too (3 MiB further).
      [9 * MiB, K64],
      [12 * MiB - K64, K64],
    ]);
    expect(map.hash).toBe("sha512-256");
    for (const c of map.chunks) expect(c.digest).toBe(chunkDigest(d.bytes.subarray(c.offset, c.offset + c.length)));
    expect(zeroRanges(map)).toEqual([
      [4 * MiB + 2 * K64, 9 * MiB],
      [9 * MiB + K64, 12 * MiB - K64],
    ]);
    expect(checkDiskMap(d.file, map)).toEqual([]);
  });

  test("the same file gives the same map; the defaults cut 4 MiB chunks", () => {
    const d = disk();
    const map = mapDisk(d.file, d);
    expect(mapDisk(d.file, d)).toEqual(map);
    expect(map.chunks.map((c) => c.length)).toEqual([4 * MiB, 2 * K64, K64, K64]);
  });

  test("a chunk that lies, or data where the map says zeros, is refused with its place", () => {
    const d = disk();
    const map = mapDisk(d.file, d);
    const lying = { ...map, chunks: map.chunks.map((c, i) => (i === 1 ? { ...c, digest: "0".repeat(64) } : c)) };
    expect(checkDiskMap(d.file, lying)).toEqual([`chunk ${4 * MiB}+${2 * K64} has sha512-256 ${map.chunks[1]!.digest}, not ${"0".repeat(64)}`]);
    const missing = { ...map, chunks: map.chunks.filter((_, i) => i !== 2) };
    expect(checkDiskMap(d.file, missing)).toEqual([`byte ${9 * MiB} is not zero, and no chunk holds it`]);
    expect(checkDiskMap(d.file, { ...map, disk: { ...map.disk, size: d.size + 1 } })[0]).toContain("the map says");
  });

  test("a disk of zeros has no chunks; a file of another size is not the named disk", () => {
    const d = disk();
    writeFileSync(d.file, Buffer.alloc(3 * MiB));
    expect(mapDisk(d.file, { ...d, size: 3 * MiB }).chunks).toEqual([]);
    expect(() => mapDisk(d.file, d)).toThrow(`is ${3 * MiB} bytes, not ${d.size}`);
  });
});
