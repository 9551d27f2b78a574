import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChunkIndex } from "../../wire/chunk-index.ts";
import { StoreClient } from "./client.ts";
import { CorruptDownload } from "./errors.ts";
import { fetchImage } from "./fetch.ts";
import type { GlanceImage } from "./image.ts";
import { indexStream } from "./indexer.ts";

/**
 * fetchImage checks what it assembles against the digest its caller names,
 * not only against what the store says: a fake store that serves other,
 * self-consistent data (record, chunk index and bytes all agreeing) under
 * the named digest is refused, and nothing is written.
 */
const noise = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (Math.imul(i + seed, 2654435761) >>> 13) & 0xff);
const digestOf = (d: Uint8Array) => `sha256:${createHash("sha256").update(d).digest("hex")}`;
const named = noise(300_000, 1);
const served = noise(300_000, 2);
const ID = "7d2f1a3c-1b2e-4c5d-8e9f-0a1b2c3d4e5f";

let server: ReturnType<typeof Bun.serve>;
let index: ChunkIndex;
/** What the fake store claims the served data is. */
let claim: string;
let requests: string[] = [];
let dir: string;

beforeAll(async () => {
  index = await indexStream([served], { min: 4096, avg: 16384, max: 65536 });
  server = Bun.serve({
    port: 0,
    fetch(req) {
      const url = new URL(req.url);
      requests.push(`${req.method} ${url.pathname} ${req.headers.get("Range") ?? ""}`.trim());
      if (url.pathname.endsWith("/chunk-index")) return Response.json({ ...index, digest: claim });
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("Range") ?? "");
      if (!m) return new Response(served);
      const end = m[2] ? Number(m[2]) : served.length - 1;
      return new Response(served.subarray(Number(m[1]), end + 1), { status: 206, headers: { "Content-Range": `bytes ${m[1]}-${end}/${served.length}` } });
    },
  });
});
afterAll(() => server.stop(true));
beforeEach(() => {
  requests = [];
  dir = mkdtempSync(join(tmpdir(), "ooo-fetch-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const client = () => new StoreClient({ url: `http://127.0.0.1:${server.port}` });
const image = (): GlanceImage => ({ id: ID, status: "active", size: served.length, ooo_digest: claim, ooo_chunk_index: true }) as unknown as GlanceImage;
const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

test("a store whose record and index own up to other data is refused before a chunk is fetched", async () => {
  claim = digestOf(served);
  const out = join(dir, "image.tar");
  const error = await rejection(fetchImage({ client: client(), image: image(), out, digest: digestOf(named) }));
  expect(error).toBeInstanceOf(CorruptDownload);
  expect(String(error)).toContain(digestOf(named));
  expect(requests.filter((r) => r.includes("/file"))).toEqual([]);
  expect(readdirSync(dir)).toEqual([]);
});

test("a store that claims the named digest for other data is refused once the data is assembled; nothing is written", async () => {
  claim = digestOf(named);
  const out = join(dir, "image.tar");
  const error = await rejection(fetchImage({ client: client(), image: image(), out, digest: digestOf(named) }));
  expect(error).toBeInstanceOf(CorruptDownload);
  expect(String(error)).toContain(`has ${digestOf(served)}`);
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(dir)).toEqual([]);
});

test("the data the caller names is fetched", async () => {
  claim = digestOf(served);
  const out = join(dir, "image.tar");
  const report = await fetchImage({ client: client(), image: image(), out, digest: digestOf(served) });
  expect(report.digest).toBe(digestOf(served));
  expect(Buffer.compare(readFileSync(out), Buffer.from(served))).toBe(0);
});
