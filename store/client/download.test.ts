import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StoreClient } from "./client.ts";
import { downloadImage } from "./download.ts";
import { CorruptDownload, ImageUnavailable, NothingToVerify, StoreRequestFailed } from "./errors.ts";
import type { GlanceImage } from "./image.ts";

/**
 * downloadImage against a tiny fake server: resuming from a partial file a
 * previous run left, a server that ignores Range, a partial file with wrong
 * bytes, data with nothing (or only md5) to check it by, a digest the caller
 * trusts against the store's record. (The store suite covers a connection
 * cut mid-way.)
 */
const data = new Uint8Array(5_000_000).map((_, i) => (i * 13 + (i >> 11)) & 0xff);
const sha256 = (d: Uint8Array) => createHash("sha256").update(d).digest("hex");
const image = { id: "0b0e5d2c-7e5f-4a53-9e3a-8a2f6c1e0d11", status: "active", size: data.length, os_hash_algo: "sha256", os_hash_value: sha256(data) } as GlanceImage;

let server: ReturnType<typeof Bun.serve>;
let honourRange = true;
/** Answer 403, as a store does for an image deactivated after the client looked it up. */
let forbid = false;
const ranges: (string | null)[] = [];
let dir: string;

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    fetch(req) {
      const range = req.headers.get("Range");
      ranges.push(range);
      if (forbid) return Response.json({ error: { message: "The requested image has been deactivated." } }, { status: 403 });
      const start = honourRange && range ? Number(/^bytes=(\d+)-$/.exec(range)![1]) : 0;
      return new Response(data.subarray(start), {
        status: start ? 206 : 200,
        headers: { "Content-Type": "application/octet-stream", ...(start ? { "Content-Range": `bytes ${start}-${data.length - 1}/${data.length}` } : {}) },
      });
    },
  });
});
afterAll(() => server.stop(true));
beforeEach(() => {
  honourRange = true;
  forbid = false;
  ranges.length = 0;
  dir = mkdtempSync(join(tmpdir(), "ooo-download-"));
});
// Not a function returned from beforeEach: bun test ignores that, and every run left three folders in /tmp.
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The error a promise rejects with. Not `expect(p).rejects`: under bun test
 * that matcher misses a settlement that comes from a Worker's message
 * (oven-sh/bun#31462, #43819), and the hashing runs on workers.
 */
const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

const client = () => new StoreClient({ url: `http://127.0.0.1:${server.port}` });
const partialOf = (out: string) => join(dir, `.${out.split("/").pop()}.${image.os_hash_value!.slice(0, 16)}.partial`);

test("resumes from the partial file a previous run left, hashing its bytes too", async () => {
  const out = join(dir, "image.tar");
  writeFileSync(partialOf(out), data.subarray(0, 1_234_567));
  const report = await downloadImage(client(), image, out);
  expect(report).toEqual({ size: data.length, received: data.length - 1_234_567, resumedFrom: 1_234_567, requests: 1 });
  expect(ranges).toEqual(["bytes=1234567-"]);
  expect(sha256(readFileSync(out))).toBe(image.os_hash_value!);
  expect(readdirSync(dir)).toEqual(["image.tar"]);
});

test("starts over when the server ignores the Range", async () => {
  honourRange = false;
  const out = join(dir, "image.tar");
  writeFileSync(partialOf(out), data.subarray(0, 3_000_000));
  const report = await downloadImage(client(), image, out);
  expect(report.received).toBe(data.length);
  expect(sha256(readFileSync(out))).toBe(image.os_hash_value!);
});

test("a partial file with wrong bytes fails verification and is dropped", async () => {
  const out = join(dir, "image.tar");
  writeFileSync(partialOf(out), new Uint8Array(2_000_000).fill(7));
  expect(await rejection(downloadImage(client(), image, out))).toBeInstanceOf(CorruptDownload);
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(dir)).toEqual([]);
});

test("an image without data is refused before any request; a refusal by the server leaves no empty partial file", async () => {
  const out = join(dir, "image.tar");
  const refused = await rejection(downloadImage(client(), { ...image, status: "deactivated" }, out));
  expect(refused).toBeInstanceOf(ImageUnavailable);
  expect((refused as Error).message).toContain("deactivated");
  expect(ranges).toEqual([]);
  forbid = true;
  expect(await rejection(downloadImage(client(), image, out))).toBeInstanceOf(StoreRequestFailed);
  expect(readdirSync(dir)).toEqual([]);
});

test("data with nothing to check it by, or only md5, is refused before any request", async () => {
  const md5 = createHash("md5").update(data).digest("hex");
  for (const record of [
    { ...image, os_hash_algo: null, os_hash_value: null },
    { ...image, os_hash_algo: null, os_hash_value: null, checksum: md5 },
    { ...image, os_hash_algo: "md5", os_hash_value: md5 },
  ]) {
    const refused = await rejection(downloadImage(client(), record, join(dir, "image.tar")));
    expect(refused).toBeInstanceOf(NothingToVerify);
  }
  expect(String(await rejection(downloadImage(client(), { ...image, os_hash_algo: null, os_hash_value: null, checksum: md5 }, join(dir, "image.tar"))))).toContain("only md5");
  expect(ranges).toEqual([]);
  expect(readdirSync(dir)).toEqual([]);
});

test("the caller's digest is the check: data the record vouches for is refused when it is not what the caller named", async () => {
  const out = join(dir, "image.tar");
  // No hash on the record: the caller's digest alone lets it download.
  const report = await downloadImage(client(), { ...image, os_hash_algo: null, os_hash_value: null }, out, { digest: `sha256:${image.os_hash_value}` });
  expect(report.size).toBe(data.length);
  rmSync(out);
  // The record's hash matches the data, but the caller named other data.
  const other = `sha256:${sha256(new Uint8Array([1, 2, 3]))}`;
  const refused = await rejection(downloadImage(client(), image, out, { digest: other }));
  expect(refused).toBeInstanceOf(CorruptDownload);
  expect(String(refused)).toContain(other);
  expect(readdirSync(dir)).toEqual([]);
});
