import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalTar } from "../lib/tar/canonical.ts";
import { DirBackend } from "./backends/dir.ts";
import { attachChunkIndex, readChunkIndex } from "./chunked.ts";
import { indexStream } from "./client/indexer.ts";
import { Store } from "./store.ts";

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "ooo-chunked-"));
  store = await Store.open({ dir, backend: new DirBackend(join(dir, "blobs")) });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function tarImage() {
  const root = join(dir, "root");
  mkdirSync(join(root, "etc"), { recursive: true });
  writeFileSync(join(root, "etc/a"), "a".repeat(70_000));
  writeFileSync(join(root, "etc/b"), "b");
  const parts: Uint8Array[] = [];
  for await (const b of canonicalTar(root, { sourceDateEpoch: 1_700_000_000 })) parts.push(b);
  const data = Buffer.concat(parts);
  const index = await indexStream([data], { min: 4096, avg: 16384, max: 65536 }, undefined, { entries: true });
  const r = await store.create({ name: "t", disk_format: "tar", container_format: "bare" });
  await store.upload(r.id, [data]);
  return { id: r.id, index };
}

test("a chunk index's tar entries are kept only when the data has exactly those entries", async () => {
  const { id, index } = await tarImage();
  expect(index.entries?.map(([p]) => p)).toEqual(["./", "./etc/", "./etc/a", "./etc/b"]);
  const forged = { ...index, entries: index.entries!.map((e) => (e[0] === "./etc/b" ? ([e[0], e[1], "f".repeat(64)] as typeof e) : e)) };
  expect(attachChunkIndex(store, id, JSON.stringify(forged))).rejects.toThrow(/entry 3 \("\.\/etc\/b"\)/);
  expect(store.get(id).properties.ooo_chunk_index).toBeUndefined();
  await attachChunkIndex(store, id, JSON.stringify(index));
  expect(JSON.parse(new TextDecoder().decode(await readChunkIndex(store, id))).entries).toEqual(index.entries);
});
