import { ChunkIndex } from "../wire/chunk-index.ts";
import { Manifest } from "../wire/manifest.ts";
import { blobBytes } from "./blobs.ts";
import type { ImageRecord } from "./image.ts";
import type { Store } from "./store.ts";

/**
 * The blobs an image refers to (sha256 hex): its data, its chunk index and
 * every chunk in it, its manifest, the manifest's signature and every
 * artifact the manifest lists. Garbage collection keeps what live images
 * refer to; withdrawal (withdrawn.ts) refuses what only withdrawn ones do.
 */
export async function imageBlobs(store: Store, r: ImageRecord): Promise<Set<string>> {
  const refs = new Set<string>();
  if (r.os_hash_value) refs.add(r.os_hash_value);
  const index = r.properties.ooo_chunk_index?.slice(7);
  if (index) {
    refs.add(index);
    for (const [id] of ChunkIndex.parse(JSON.parse(new TextDecoder().decode(await blobBytes(store, index)))).chunks) refs.add(id);
  }
  const manifest = r.properties.ooo_manifest?.slice(7);
  if (manifest) {
    refs.add(manifest);
    for (const a of Manifest.parse(JSON.parse(new TextDecoder().decode(await blobBytes(store, manifest)))).artifacts) refs.add(a.sha256);
  }
  const signature = r.properties.ooo_manifest_signature?.slice(7);
  if (signature) refs.add(signature);
  return refs;
}

/** Every blob the images `which` selects refer to. */
export async function blobsOf(store: Store, which: (r: ImageRecord) => boolean): Promise<Set<string>> {
  const all = new Set<string>();
  for (const r of store.records.all()) if (which(r)) for (const hex of await imageBlobs(store, r)) all.add(hex);
  return all;
}
