import { expect, test } from "bun:test";
import { z } from "zod";
import { DiskMap, DiskMapV1, DiskMapV2, MAX_CHUNK_BYTES, mappedBytes, packedBytes, zeroRanges } from "./disk-map.ts";

const hex = (c: string) => c.repeat(64);
const map = {
  version: 2,
  hash: "sha512-256",
  disk: { size: 100, sha256: hex("d") },
  chunks: [
    { offset: 0, length: 10, digest: hex("a") },
    { offset: 40, length: 20, digest: hex("b") },
  ],
};

test("the disk map format is documented and stable (JSON Schema snapshots of both versions)", () => {
  expect(JSON.stringify(z.toJSONSchema(DiskMapV2, { io: "input" }), null, 2)).toMatchSnapshot();
  expect(JSON.stringify(z.toJSONSchema(DiskMapV1, { io: "input" }), null, 2)).toMatchSnapshot();
});

test("a version 1 map (chunks by sha256) is read as version 2, its chunks' hash sha256", () => {
  const v1 = { version: 1, disk: map.disk, chunks: map.chunks.map((c) => ({ offset: c.offset, length: c.length, sha256: c.digest })) };
  expect(DiskMap.parse(v1)).toEqual({ ...map, version: 2 as const, hash: "sha256" as const });
  // A version 1 map does not carry version 2's fields, nor the reverse.
  expect(DiskMap.safeParse({ ...map, version: 1 }).success).toBe(false);
  expect(DiskMap.safeParse({ ...v1, version: 2, hash: "sha256" }).success).toBe(false);
  expect(DiskMap.safeParse({ ...map, hash: "md5" }).error!.issues.map((i) => i.path.join("."))).toEqual(["hash"]);
});

test("what a deploy fetches, and what it zeroes", () => {
  const m = DiskMap.parse(map);
  expect(mappedBytes(m)).toBe(30);
  expect(zeroRanges(m)).toEqual([
    [10, 40],
    [60, 100],
  ]);
  expect(zeroRanges(DiskMap.parse({ ...map, chunks: [] }))).toEqual([[0, 100]]);
  expect(zeroRanges(DiskMap.parse({ ...map, chunks: [{ offset: 0, length: 100, digest: hex("a") }] }))).toEqual([]);
});

test("chunks out of order, overlapping, past the end or too big are refused, every one at its place", () => {
  const bad = DiskMap.safeParse({
    ...map,
    chunks: [
      { offset: 40, length: 20, digest: hex("b") },
      { offset: 50, length: 5, digest: hex("c") },
      { offset: 90, length: 11, digest: hex("e") },
    ],
  });
  expect(bad.success).toBe(false);
  expect(bad.error!.issues.map((i) => [i.path.join("."), i.message])).toEqual([
    ["chunks.1.offset", "chunk at 50 starts before the one before it ends (60): chunks are in disk order and do not overlap"],
    ["chunks.2", "chunk 90+11 ends past the disk's 100 bytes"],
  ]);
  expect(DiskMap.safeParse({ ...map, disk: { size: 2 * MAX_CHUNK_BYTES, sha256: hex("d") }, chunks: [{ offset: 0, length: MAX_CHUNK_BYTES + 1, digest: hex("a") }] }).success).toBe(false);
  expect(DiskMap.safeParse({ ...map, version: 3 }).success).toBe(false);
});

test("a pack's frames: every chunk has one or none does, one after the other in chunk order", () => {
  const framed = { ...map, chunks: [{ ...map.chunks[0]!, packed: { offset: 0, length: 4, digest: hex("e") } }, { ...map.chunks[1]!, packed: { offset: 4, length: 9, digest: hex("f") } }] };
  expect(packedBytes(DiskMap.parse(framed))).toBe(13);
  expect(packedBytes(DiskMap.parse(map))).toBe(0);
  const problems = (m: unknown) => DiskMap.safeParse(m).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  expect(problems({ ...framed, chunks: [framed.chunks[0], map.chunks[1]] })).toEqual(["chunks.1: chunk has no frame where the others have one: a pack holds every chunk or none"]);
  expect(problems({ ...framed, chunks: [framed.chunks[0], { ...framed.chunks[1], packed: { ...framed.chunks[1]!.packed, offset: 5 } }] })).toEqual([
    "chunks.1.packed.offset: frame at 5, not 4: the frames follow one another in chunk order",
  ]);
  expect(problems({ ...framed, chunks: [{ ...framed.chunks[0], packed: { ...framed.chunks[0]!.packed, offset: 3 } }, framed.chunks[1]] })?.[0]).toBe(
    "chunks.0.packed.offset: frame at 3, not 0: the frames follow one another in chunk order",
  );
});
