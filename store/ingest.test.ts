import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirBackend } from "./backends/dir.ts";
import { blocks } from "./blocks.ts";
import { BadRequest, DigestMismatch, TooLarge } from "./errors.ts";
import { ingest } from "./ingest.ts";

let dir: string;
let backend: DirBackend;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ooo-ingest-"));
  backend = new DirBackend(dir);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

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

test("blocks regroups pieces without losing or reordering bytes", async () => {
  const data = new Uint8Array(3_500_000).map((_, i) => i % 251);
  const pieces = [data.subarray(0, 10), data.subarray(10, 2_500_000), data.subarray(2_500_000)];
  const out: Uint8Array[] = [];
  for await (const b of blocks(pieces, 1 << 20)) out.push(b);
  expect(out.map((b) => b.length)).toEqual([1 << 20, 1 << 20, 1 << 20, 3_500_000 - 3 * (1 << 20)]);
  expect(hex(Buffer.concat(out))).toBe(hex(data));
});
