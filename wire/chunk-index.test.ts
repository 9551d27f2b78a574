import { expect, test } from "bun:test";
import { z } from "zod";
import { ChunkIndex, chunkOffsets } from "./chunk-index.ts";

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
  expect(z.toJSONSchema(ChunkIndex, { io: "input" })).toMatchSnapshot();
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
