import { blobsOf } from "./references.ts";
import type { Store } from "./store.ts";

/**
 * Garbage collection: delete the blobs no live image refers to
 * (references.ts). Deleting an image never deletes blobs itself, because
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

export async function collectGarbage(store: Store, options: { dryRun?: boolean } = {}): Promise<GcReport> {
  const keep = await blobsOf(store, (r) => r.status !== "deleted");
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
