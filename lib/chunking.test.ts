import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { ALGORITHM, checkParams, chunkId, chunkStream, cutPoints, DEFAULT_CHUNKER, GEAR } from "./chunking.ts";

/** Deterministic pseudo-random bytes: sha256 in counter mode. */
function noise(bytes: number, seed = "x"): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0, at = 0; at < bytes; i++, at += 32) out.set(createHash("sha256").update(`${seed}:${i}`).digest().subarray(0, Math.min(32, bytes - at)), at);
  return out;
}

const small = { min: 1024, avg: 4096, max: 16384 };

describe("chunking", () => {
  test("the algorithm is pinned: table and cut points never change silently", () => {
    // Changing any of these re-cuts every published image: make a new ALGORITHM instead.
    expect(ALGORITHM).toBe("gear32-nc2-v1");
    expect([GEAR[0], GEAR[1], GEAR[255]]).toEqual([-788497697, -1670363794, -1173633795]);
    expect(cutPoints(noise(1 << 20)).slice(0, 4)).toEqual(PINNED_CUTS);
  });

  test("chunks respect min and max, and the last may be short", () => {
    const data = noise(3 << 20);
    const ends = cutPoints(data);
    const sizes = ends.map((end, i) => end - (ends[i - 1] ?? 0));
    expect(ends.at(-1)).toBe(data.length);
    for (const s of sizes.slice(0, -1)) {
      expect(s).toBeGreaterThanOrEqual(DEFAULT_CHUNKER.min);
      expect(s).toBeLessThanOrEqual(DEFAULT_CHUNKER.max);
    }
    const mean = data.length / sizes.length;
    expect(mean).toBeGreaterThan(DEFAULT_CHUNKER.avg * 0.8);
    expect(mean).toBeLessThan(DEFAULT_CHUNKER.avg * 1.6);
  });

  test("constant data is cut at max", () => {
    expect(cutPoints(new Uint8Array(10 * 16384), small)).toEqual(Array.from({ length: 10 }, (_, i) => (i + 1) * 16384));
  });

  test("a stream cut into arbitrary pieces gives the same chunks as the whole", async () => {
    const data = noise(600_000);
    const whole = cutPoints(data, small);
    for (const pieceSize of [1, 7, 1000, 4096, 65536]) {
      const pieces = function* () {
        for (let at = 0; at < data.length; at += pieceSize) yield data.slice(at, at + pieceSize);
      };
      const ends: number[] = [];
      let at = 0;
      const ids: string[] = [];
      for await (const c of chunkStream(pieces(), small)) {
        at += c.length;
        ends.push(at);
        ids.push(chunkId(c));
      }
      expect(ends).toEqual(whole);
      expect(ids[0]).toBe(chunkId(data.subarray(0, whole[0])));
    }
  });

  test("an insertion changes only the chunks around it", async () => {
    const data = noise(2 << 20);
    const edited = new Uint8Array(data.length + 100);
    edited.set(data.subarray(0, 1 << 20));
    edited.set(noise(100, "ins"), 1 << 20);
    edited.set(data.subarray(1 << 20), (1 << 20) + 100);
    const ids = async (d: Uint8Array) => {
      const out = new Map<string, number>();
      for await (const c of chunkStream([d])) out.set(chunkId(c), c.length);
      return out;
    };
    const before = await ids(data);
    const after = await ids(edited);
    let fresh = 0;
    for (const [id, size] of after) if (!before.has(id)) fresh += size;
    expect(fresh).toBeLessThan(3 * DEFAULT_CHUNKER.max);
  });

  test("bad parameters are refused", () => {
    expect(checkParams({ min: 10, avg: 5, max: 20 })).toContain("min < avg < max");
    expect(checkParams({ min: 1000, avg: 3000, max: 9000 })).toContain("power of two");
    expect(checkParams(DEFAULT_CHUNKER)).toBeUndefined();
  });
});

const PINNED_CUTS = [83207, 189129, 274732, 337413];
