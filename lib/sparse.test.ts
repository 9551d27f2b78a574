import { describe, expect, test } from "bun:test";
import { dataRuns } from "./sparse.ts";

const K64 = 64 * 1024;
/** `blocks` 64 KiB blocks, a non-zero byte in each one listed in `data`; then `tail` more bytes, zero unless `tailData`. */
function image(blocks: number, data: number[], tail = 0, tailData = false): Uint8Array {
  const bytes = new Uint8Array(blocks * K64 + tail);
  for (const b of data) bytes[b * K64 + 1000] = 7;
  if (tailData) bytes[blocks * K64 + tail - 1] = 1;
  return bytes;
}

describe("dataRuns: what a sparse writer writes", () => {
  test("adjacent data blocks form one run; zero blocks between them are left out", () => {
    expect([...dataRuns(image(6, [0, 1, 4]))]).toEqual([
      [0, 2 * K64],
      [4 * K64, 5 * K64],
    ]);
  });

  test("all zeros, a short zero tail: nothing to write", () => {
    expect([...dataRuns(image(3, []))]).toEqual([]);
    expect([...dataRuns(image(0, [], 100))]).toEqual([]);
    expect([...dataRuns(image(2, [0], 100))]).toEqual([[0, K64]]);
  });

  test("a short last block with data is written up to the end", () => {
    expect([...dataRuns(image(2, [1], 100, true))]).toEqual([[K64, 2 * K64 + 100]]);
    expect([...dataRuns(image(0, [], 5, true))]).toEqual([[0, 5]]);
  });
});
