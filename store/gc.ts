import { ChunkIndex } from "../wire/chunk-index.ts";
import { Manifest } from "../wire/manifest.ts";
import { blobBytes } from "./blobs.ts";
import type { Store } from "./store.ts";

/**
 * Garbage collection: delete the blobs no live image refers to — its data,
 * its chunk index and every chunk in it, its manifest and every artifact the
 * manifest lists. Deleting an image never deletes blobs itself, because
 * another image or an upload in flight may share them; this runs with the
 * store opened (and so locked) by the caller, with no server running, so
 * nothing can start referring to a blob while it is being swept.
 */
export interface GcReport {
  referenced: number;
  deleted: number;
  bytesFreed: number;
  kept: number;
}

async function referenced(store: Store): Promise<Set<string>> {
  const keep = new Set<string>();
  for (const r of store.records.all()) {
    if (r.status === "deleted") continue;
    if (r.os_hash_value) keep.add(r.os_hash_value);
    const index = r.properties.ooo_chunk_index?.slice(7);
    if (index) {
      keep.add(index);
      const parsed = ChunkIndex.parse(JSON.parse(new TextDecoder().decode(await blobBytes(store, index))));
      for (const [id] of parsed.chunks) keep.add(id);
    }
    const manifest = r.properties.ooo_manifest?.slice(7);
    if (manifest) {
      keep.add(manifest);
      const parsed = Manifest.parse(JSON.parse(new TextDecoder().decode(await blobBytes(store, manifest))));
      for (const a of parsed.artifacts) keep.add(a.sha256);
    }
  }
  return keep;
}

export async function collectGarbage(store: Store, options: { dryRun?: boolean } = {}): Promise<GcReport> {
  const keep = await referenced(store);
  const report: GcReport = { referenced: keep.size, deleted: 0, bytesFreed: 0, kept: 0 };
  for await (const hex of store.backend.list()) {
    if (keep.has(hex)) {
      report.kept++;
      continue;
    }
    report.bytesFreed += (await store.backend.stat(hex)) ?? 0;
    report.deleted++;
    if (!options.dryRun) await store.backend.delete(hex);
  }
  return report;
}
