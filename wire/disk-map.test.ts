import { expect, test } from "bun:test";
import { z } from "zod";
import { DiskMap, DiskMapV1, MAX_CHUNK_BYTES, mappedBytes, zeroRanges } from "./disk-map.ts";

const hex = (c: string) => c.repeat(64);
const map = {
  version: 1,
  disk: { size: 100, sha256: hex("d") },
  chunks: [
    { offset: 0, length: 10, sha256: hex("a") },
    { offset: 40, length: 20, sha256: hex("b") },
  ],
};

test("the disk map format is documented and stable (JSON Schema snapshot)", () => {
  expect(JSON.stringify(z.toJSONSchema(DiskMapV1, { io: "input" }), null, 2)).toMatchSnapshot();
});

test("what a deploy fetches, and what it zeroes", () => {
  const m = DiskMap.parse(map);
  expect(mappedBytes(m)).toBe(30);
  expect(zeroRanges(m)).toEqual([
    [10, 40],
    [60, 100],
  ]);
  expect(zeroRanges(DiskMap.parse({ ...map, chunks: [] }))).toEqual([[0, 100]]);
  expect(zeroRanges(DiskMap.parse({ ...map, chunks: [{ offset: 0, length: 100, sha256: hex("a") }] }))).toEqual([]);
});

test("chunks out of order, overlapping, past the end or too big are refused, every one at its place", () => {
  const bad = DiskMap.safeParse({
    ...map,
    chunks: [
      { offset: 40, length: 20, sha256: hex("b") },
      { offset: 50, length: 5, sha256: hex("c") },
      { offset: 90, length: 11, sha256: hex("e") },
    ],
  });
  expect(bad.success).toBe(false);
  expect(bad.error!.issues.map((i) => [i.path.join("."), i.message])).toEqual([
    ["chunks.1.offset", "chunk at 50 starts before the one before it ends (60): chunks are in disk order and do not overlap"],
    ["chunks.2", "chunk 90+11 ends past the disk's 100 bytes"],
  ]);
  expect(DiskMap.safeParse({ ...map, disk: { size: 2 * MAX_CHUNK_BYTES, sha256: hex("d") }, chunks: [{ offset: 0, length: MAX_CHUNK_BYTES + 1, sha256: hex("a") }] }).success).toBe(false);
  expect(DiskMap.safeParse({ ...map, version: 2 }).success).toBe(false);
});
