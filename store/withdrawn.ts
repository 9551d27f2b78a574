import { Forbidden } from "./errors.ts";
import { blobsOf } from "./references.ts";
import type { Store } from "./store.ts";

/**
 * Withdrawn is withdrawn: a deactivated image's data is refused in every
 * form — by the image (`…/file`, `…/chunk-index`, `…/manifest`, store.ts)
 * and by content address (`GET /v2/ooo/blobs/{digest}`), here. A blob that
 * an image not withdrawn refers to too (a chunk two versions share, a
 * kernel) stays readable: it is that image's data as much. A blob no image
 * refers to (chunks of a publish in progress) is not withdrawn.
 *
 * The set is computed only while some image is deactivated (a scan of the
 * records' indexes and manifests, as `ooo store gc` does) and again only
 * after a record changed: deactivation is rare, blob reads are not.
 */
export class WithdrawnBlobs {
  private cached?: { generation: number; blobs: Set<string> };
  private computing?: { generation: number; blobs: Promise<Set<string>> };

  constructor(private readonly store: Store) {}

  private async current(): Promise<Set<string>> {
    const generation = this.store.records.generation;
    if (this.cached?.generation === generation) return this.cached.blobs;
    if (!this.store.records.all().some((r) => r.status === "deactivated")) {
      this.cached = { generation, blobs: new Set() };
      return this.cached.blobs;
    }
    if (this.computing?.generation !== generation) {
      const blobs = (async () => {
        const withdrawn = await blobsOf(this.store, (r) => r.status === "deactivated");
        const live = await blobsOf(this.store, (r) => r.status !== "deactivated" && r.status !== "deleted");
        for (const hex of live) withdrawn.delete(hex);
        return withdrawn;
      })();
      this.computing = { generation, blobs };
      blobs.then((b) => (this.cached = { generation, blobs: b }), () => {}).finally(() => {
        if (this.computing?.blobs === blobs) this.computing = undefined;
      });
    }
    return this.computing.blobs;
  }

  /** Throws Glance's 403 when only withdrawn images refer to the blob. */
  async check(hex: string): Promise<void> {
    if ((await this.current()).has(hex))
      throw new Forbidden(`Blob sha256:${hex} belongs only to deactivated images. Image data download is forbidden.`);
  }
}
