import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { indexStream } from "./client/indexer.ts";
import { DirBackend } from "./backends/dir.ts";
import { attachChunkIndex } from "./chunked.ts";
import { collectGarbage } from "./gc.ts";
import { Store } from "./store.ts";

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "ooo-gc-"));
  store = await Store.open({ dir, backend: new DirBackend(join(dir, "blobs")) });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function image(seed: number) {
  // xorshift noise: seeds give unrelated data (a shifted sequence would share chunks).
  let x = seed * 2654435761;
  const data = new Uint8Array(600_000).map(() => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x & 0xff));
  const r = await store.create({ name: `gc${seed}`, disk_format: "tar", container_format: "bare" });
  await store.upload(r.id, [data]);
  const index = await indexStream([data], { min: 4096, avg: 16384, max: 65536 });
  await attachChunkIndex(store, r.id, JSON.stringify(index));
  return { id: r.id, chunks: new Set(index.chunks.map(([c]) => c)) };
}

const names = async () => {
  const out = new Set<string>();
  for await (const n of store.backend.list()) out.add(n);
  return out;
};

test("gc deletes what only deleted images referred to, and nothing else", async () => {
  const a = await image(1);
  const b = await image(2);
  expect((await collectGarbage(store)).deleted).toBe(0);
  await store.delete(a.id);
  const before = await names();
  const dry = await collectGarbage(store, { dryRun: true });
  expect(dry.deleted).toBeGreaterThan(a.chunks.size);
  expect(await names()).toEqual(before);
  const r = await collectGarbage(store);
  expect(r.deleted).toBe(dry.deleted);
  const after = await names();
  for (const c of b.chunks) expect(after.has(c)).toBe(true);
  for (const c of a.chunks) if (!b.chunks.has(c)) expect(after.has(c)).toBe(false);
  expect(after.has(store.get(b.id).os_hash_value!)).toBe(true);
});
