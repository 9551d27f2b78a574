import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { BLOCK_BYTES, ParallelHash, PieceHasher } from "./parallel-hash.ts";

/**
 * The error a promise rejects with. Not `expect(p).rejects`: under bun test
 * that matcher misses a settlement that comes from a Worker's message
 * (oven-sh/bun#31462, #43819), and the hashing runs on workers.
 */
const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

const digest = (algorithm: string, data: Uint8Array) => createHash(algorithm).update(data).digest("hex");

test("hashes across many trips round the ring, every block to the sink once, in order, at its position", async () => {
  const data = new Uint8Array(40 * BLOCK_BYTES + 12345);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 13)) & 0xff;
  const hash = new ParallelHash(["sha256", "md5"]);
  const copy = new Uint8Array(data.length);
  const positions: number[] = [];
  // A slow sink: slots are reused only after it is done with them.
  const sink = async (block: Uint8Array, position: number) => {
    positions.push(position);
    await Bun.sleep(0);
    copy.set(block, position);
  };
  for (let at = 0; at < data.length; at += 65536 + 17) await hash.update(data.subarray(at, at + 65536 + 17), sink);
  expect(await hash.digest(sink)).toEqual([digest("sha256", data), digest("md5", data)]);
  expect(positions).toEqual(Array.from({ length: 41 }, (_, i) => i * BLOCK_BYTES));
  expect(digest("sha256", copy)).toBe(digest("sha256", data));
});

test("concurrent jobs share the threads and keep apart", async () => {
  const inputs = [1, 2, 3].map((seed) => new Uint8Array(3 * BLOCK_BYTES + seed).fill(seed));
  const results = await Promise.all(
    inputs.map(async (data) => {
      const hash = new ParallelHash(["sha256"]);
      for (let at = 0; at < data.length; at += 100_000) await hash.update(data.subarray(at, at + 100_000));
      return (await hash.digest())[0];
    }),
  );
  expect(results).toEqual(inputs.map((d) => digest("sha256", d)));
});

test("a failing sink fails the job; cancel waits for sinks still at work", async () => {
  const hash = new ParallelHash(["sha256"]);
  let running = 0;
  const sink = async (_block: Uint8Array, position: number) => {
    running++;
    await Bun.sleep(5);
    running--;
    if (position === 2 * BLOCK_BYTES) throw new Error("disk full");
  };
  const block = new Uint8Array(BLOCK_BYTES);
  const failure = await rejection(
    (async () => {
      for (let i = 0; i < 40; i++) await hash.update(block, sink);
    })(),
  );
  expect(String(failure)).toContain("disk full");
  await hash.cancel();
  expect(running).toBe(0);
});

test("an empty stream has the empty digests", async () => {
  expect(await new ParallelHash(["sha256", "md5"]).digest()).toEqual([digest("sha256", new Uint8Array()), digest("md5", new Uint8Array())]);
});

test("pieces hash on several threads at once, each moved there and back", async () => {
  const pieces = [1, 2, 3, 4, 5].map((seed) => new Uint8Array(BLOCK_BYTES * seed + seed).fill(seed * 11));
  const expected = pieces.map((p) => digest("sha256", p));
  for (const width of [0, 1, 3]) {
    const hasher = new PieceHasher("sha256", width);
    const results = await Promise.all(pieces.map((p) => hasher.digest(p.slice().buffer)));
    expect(results.map((r) => r.hex)).toEqual(expected);
    // The bytes come back whole, for the caller to write.
    expect(results.map((r) => digest("sha256", new Uint8Array(r.bytes)))).toEqual(expected);
  }
});
