import { expect, test } from "bun:test";
import { z } from "zod";
import { ChunkIndex, ChunkIndexV1, chunkOffsets } from "./chunk-index.ts";

const id = (c: string) => c.repeat(64);
const index = {
  version: 1,
  digest: `sha256:${id("d")}`,
  size: 30,
  chunker: { algorithm: "gear32-nc2-v1", min: 4, avg: 8, max: 16 },
  chunks: [
    [id("a"), 10],
    [id("b"), 12],
    [id("a"), 8],
  ],
};

test("the chunk index format is documented and stable (JSON Schema snapshot)", () => {
  expect(z.toJSONSchema(ChunkIndexV1, { io: "input" })).toMatchSnapshot();
});

test("offsets are the running sum; a repeated chunk appears twice", () => {
  expect(chunkOffsets(ChunkIndex.parse(index))).toEqual([
    { id: id("a"), offset: 0, size: 10 },
    { id: id("b"), offset: 10, size: 12 },
    { id: id("a"), offset: 22, size: 8 },
  ]);
});

test.each([
  ["sizes that do not add up", { size: 31 }],
  ["a chunk over max", { chunks: [[id("a"), 30]] }],
  ["an uppercase id", { chunks: [[id("A"), 30]] }],
  ["a digest without its algorithm", { digest: id("d") }],
])("refuses %s", (_what, change) => {
  expect(ChunkIndex.safeParse({ ...index, ...change }).success).toBe(false);
});

test.each([
  ["a valid index", {}],
  ["valid entries with a hard link", { size: 4096, chunks: [[id("a"), 4096]], chunker: { algorithm: "x", min: 1, avg: 2, max: 4096 }, entries: [["./a", 1024, id("e")], ["./b", 1024, id("e"), "./a"]] }],
  ["a chunk with a third element", { chunks: [[id("a"), 10, "x"], [id("b"), 12], [id("a"), 8]] }],
  ["a fractional size", { size: 30.5, chunks: [[id("a"), 10.5], [id("b"), 12], [id("a"), 8]] }],
  ["a negative size", { size: 10, chunks: [[id("a"), -2], [id("b"), 12]] }],
  ["a size as a string", { chunks: [[id("a"), "10"], [id("b"), 12], [id("a"), 8]] }],
  ["an id one character short", { chunks: [[id("a").slice(1), 10], [id("b"), 12], [id("a"), 8]] }],
  ["an entry with an empty path", { size: 4096, chunks: [[id("a"), 4096]], chunker: { algorithm: "x", min: 1, avg: 2, max: 4096 }, entries: [["", 1024, id("e")]] }],
  ["an entry with a number as link target", { size: 4096, chunks: [[id("a"), 4096]], chunker: { algorithm: "x", min: 1, avg: 2, max: 4096 }, entries: [["./a", 1024, id("e"), 7]] }],
  ["entries past the end blocks", { size: 4096, chunks: [[id("a"), 4096]], chunker: { algorithm: "x", min: 1, avg: 2, max: 4096 }, entries: [["./a", 3584, id("e")]] }],
  ["chunks that are not a list", { chunks: { 0: [id("a"), 30] } }],
])("the fast parse decides as the schema does: %s", (_what, change) => {
  const value = { ...index, ...change };
  const schema = ChunkIndexV1.safeParse(value);
  const ours = ChunkIndex.safeParse(value);
  expect(ours.success).toBe(schema.success);
  if (schema.success) expect(ours.data).toEqual(schema.data);
  else expect(ours.error?.issues).toEqual(schema.error.issues);
});
