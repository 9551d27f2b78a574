import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApi } from "./api.ts";
import { DirBackend } from "./backends/dir.ts";
import { Store } from "./store.ts";

/**
 * The store's limits on what it reads whole, at its defaults: a record's JSON
 * of 1 MiB, 50,000 digests per blob query, and 128 MiB of such bodies held
 * at once across requests. Each refusal is a 413 or 429 that says why.
 */
const tokens = { write: ["write-token-0123456789"], read: ["read-token-0123456789"] };
let dir: string;
let store: Store;
let api: (req: Request) => Promise<Response>;
const post = (path: string, body: string | ReadableStream<Uint8Array>, method = "POST") =>
  api(new Request(`http://store${path}`, { method, body, headers: { "X-Auth-Token": tokens.write[0]!, "Content-Type": "application/json" } }));
const messageOf = async (res: Response) => ((await res.json()) as { error: { message: string } }).error.message;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ooo-store-limits-"));
  store = await Store.open({ dir, backend: new DirBackend(join(dir, "blobs")) });
  api = createApi(store, { tokens });
});
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("store limits", () => {
  test("an image record's JSON over 1 MiB is refused with 413, read or declared", async () => {
    const body = JSON.stringify({ name: "big", description: "x".repeat(2 << 20) });
    const res = await post("/v2/images", body);
    expect(res.status).toBe(413);
    expect(await messageOf(res)).toMatch(/larger than 1048576 bytes/);
    const streamed = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(body));
        c.close();
      },
    });
    expect((await post("/v2/images", streamed)).status).toBe(413);
    expect((await post("/v2/images", JSON.stringify({ name: "small" }))).status).toBe(201);
  });

  test("a blob query of more than 50,000 digests is refused with 413; 50,000 are answered", async () => {
    const digests = (n: number) => Array.from({ length: n }, (_, i) => `sha256:${i.toString(16).padStart(64, "0")}`);
    const over = await post("/v2/ooo/blobs/missing", JSON.stringify({ digests: digests(50_001) }));
    expect(over.status).toBe(413);
    expect(await messageOf(over)).toMatch(/at most 50000 digests/);
    const ok = await post("/v2/ooo/blobs/missing", JSON.stringify({ digests: digests(50_000) }));
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { missing: string[] }).missing).toHaveLength(50_000);
  }, 30_000);

  test("large bodies sent at once beyond the 128 MiB budget get 429 with Retry-After; the others are read", async () => {
    const image = await store.create({ name: "indexed", disk_format: "raw", container_format: "bare" });
    // Three slow 60 MiB chunk indexes at once: the third would hold 180 MiB.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = () => {
      let sent = 0;
      return new ReadableStream<Uint8Array>({
        async pull(c) {
          if (sent >= 60 << 20) return c.close();
          if (sent >= 50 << 20) await gate;
          c.enqueue(new Uint8Array(1 << 20).fill(0x20));
          sent += 1 << 20;
        },
      });
    };
    const answers = [1, 2, 3].map(() => post(`/v2/images/${image.id}/chunk-index`, slow(), "PUT"));
    await Bun.sleep(500);
    release();
    const statuses = await Promise.all(answers.map(async (a) => [(await a).status, (await a).headers.get("retry-after")]));
    expect(statuses.filter(([s]) => s === 429)).toEqual([[429, "1"]]);
    // The two read whole are not chunk indexes (spaces): refused for that, not for their size.
    expect(statuses.filter(([s]) => s === 400)).toHaveLength(2);
  }, 30_000);
});
