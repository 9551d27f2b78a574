import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirBackend } from "./backends/dir.ts";
import { BadRequest, DigestMismatch, TooLarge } from "./errors.ts";
import { ingest } from "./ingest.ts";

let dir: string;
let backend: DirBackend;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ooo-ingest-"));
  backend = new DirBackend(dir);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The error a promise rejects with. Not `expect(p).rejects`: under bun test
 * that matcher misses a settlement that comes from a Worker's message
 * (oven-sh/bun#31462, #43819), and the hashing runs on workers.
 */
const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

const hex = (d: Uint8Array) => createHash("sha256").update(d).digest("hex");
const files = (d: string): string[] =>
  readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : [e.name]));

describe("ingest", () => {
  test("stores bytes under their sha256, with md5, once", async () => {
    const data = new TextEncoder().encode("hello store");
    const r = await ingest(backend, [data.subarray(0, 5), data.subarray(5)], { md5: true, expect: hex(data) });
    expect(r).toEqual({ hex: hex(data), size: data.length, md5: createHash("md5").update(data).digest("hex"), existed: false });
    expect(await backend.stat(r.hex)).toBe(data.length);
    expect((await ingest(backend, [data])).existed).toBe(true);
    expect(files(dir)).toEqual([r.hex]);
  });

  test("large data is hashed on the worker thread, to the same digests", async () => {
    const data = new Uint8Array(5 << 20).map((_, i) => (i * 31) & 0xff);
    const sha = hex(data);
    const md5 = createHash("md5").update(data).digest("hex");
    expect(await ingest(backend, [data.slice(0, 3_000_001), data.slice(3_000_001)], { large: true, md5: true })).toEqual({ hex: sha, size: data.length, md5, existed: false });
    expect((await ingest(backend, [data.slice()], { large: true })).md5).toBeUndefined();
  });

  test("a large request body goes to the file natively and is hashed behind the writer", async () => {
    const data = new Uint8Array(5 << 20).map((_, i) => (i * 31) & 0xff);
    const stream = (d: Uint8Array) => new Response(d).body!;
    const r = await ingest(backend, stream(data), { large: true, md5: true, declaredSize: data.length });
    expect(r).toEqual({ hex: hex(data), size: data.length, md5: createHash("md5").update(data).digest("hex"), existed: false });
    expect(hex(new Uint8Array(await new Response(await backend.read(r.hex)).arrayBuffer()))).toBe(r.hex);
    expect((await ingest(backend, stream(data), { large: true })).existed).toBe(true);
    expect(await rejection(ingest(backend, stream(data.subarray(1)), { large: true, expect: r.hex }))).toBeInstanceOf(DigestMismatch);
    expect(await rejection(ingest(backend, stream(data), { large: true, declaredSize: 5 }))).toBeInstanceOf(BadRequest);
    const broken = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(data.slice(0, 3 << 20));
        c.error(new Error("connection reset"));
      },
    });
    expect(String(await rejection(ingest(backend, broken, { large: true, md5: true })))).toContain("connection reset");
    expect(files(dir)).toEqual([r.hex]);
  });

  test("thin data (a raw disk) leaves its runs of zeros as holes, a trailing one too, and reads back whole", async () => {
    const pattern = (n: number) => new Uint8Array(n).map((_, i) => 1 + ((i * 7) & 0x7f));
    const data = Buffer.concat([pattern(1 << 20), new Uint8Array(6 << 20), pattern(100_000), new Uint8Array(3 << 20)]);
    const pieces = (d: Uint8Array) => [d.subarray(0, 777_777), d.subarray(777_777, 5 << 20), d.subarray(5 << 20)];
    const request = (d: Uint8Array) => new Response(d).body!;
    for (const [source, options] of [
      [pieces(data), {}],
      [request(data), { large: true }],
    ] as const) {
      const r = await ingest(backend, source, { ...options, thin: true, declaredSize: data.length });
      expect(r).toMatchObject({ hex: hex(data), size: data.length, existed: false });
      const path = join(dir, "sha256", r.hex.slice(0, 2), r.hex);
      expect(statSync(path).size).toBe(data.length);
      // Allocated: the 1.1 MiB of pattern and the blocks around it, not the 9 MiB of zeros.
      expect(statSync(path).blocks * 512).toBeLessThan(2 << 20);
      expect(hex(new Uint8Array(await new Response(await backend.read(r.hex)).arrayBuffer()))).toBe(r.hex);
      await backend.delete(r.hex);
    }
  });

  test.each([
    ["a wrong digest", { expect: "0".repeat(64) }, DigestMismatch],
    ["a wrong declared size", { declaredSize: 3 }, BadRequest],
    ["a size over the cap", { maxSize: 5 }, TooLarge],
  ] as const)("%s keeps nothing", async (_what, options, error) => {
    await expect(ingest(backend, [new Uint8Array(10).fill(1)], options)).rejects.toBeInstanceOf(error);
    expect(files(dir)).toEqual([]);
  });

  test("empty data is refused unless allowed", async () => {
    await expect(ingest(backend, [])).rejects.toBeInstanceOf(BadRequest);
    expect((await ingest(backend, [], { allowEmpty: true })).size).toBe(0);
  });

  test("a source that fails mid-way keeps nothing", async () => {
    async function* broken() {
      yield new Uint8Array(3 << 20);
      throw new Error("connection reset");
    }
    await expect(ingest(backend, broken())).rejects.toThrow("connection reset");
    expect(files(dir)).toEqual([]);
  });
});
