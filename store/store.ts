import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { BlobBackend } from "./backends/types.ts";
import { BadRequest, Conflict, Forbidden, Gone, ImageNotFound, NotAStore, NotFound, TooLarge } from "./errors.ts";
import { DIGEST_FORMAT, isDigest } from "../wire/digest.ts";
import { UUID_RE } from "../wire/image-ref.ts";
import { BASE_KEYS, ImageRecord, isReadOnlyKey, PropertyKey, Tag } from "./image.ts";
import { ingest } from "./ingest.ts";
import { listImages, type ListPage } from "./list.ts";
import { lockStoreDir } from "./lock.ts";
import { applyPatch, MAX_TAGS } from "./patch.ts";
import { parseRange } from "./range.ts";
import { RecordStore } from "./records.ts";
import { checkTransition } from "./status.ts";
import { TempUrls } from "./temp-url.ts";
import { WithdrawnBlobs } from "./withdrawn.ts";

/**
 * The image store: records (Glance's image model) over content-addressed
 * blobs in a backend. Everything the HTTP API does is a method here, so the
 * server only translates HTTP, and tests can drive the store directly.
 *
 * An image's data is the blob named by its sha256 (`os_hash_algo` is
 * sha256, `os_hash_value` the blob's name). A record becomes `active` only
 * after its blob is complete, verified and flushed; a failed upload puts it
 * back to `queued`, and a server killed mid-upload finds it `saving` at the
 * next start and puts it back too.
 */
export interface StoreOptions {
  /** Records, the lock, and (for the dir backend) blobs live here. */
  dir: string;
  backend: BlobBackend;
  allowEmptyUploads?: boolean;
  /** Also fill Glance's legacy md5 `checksum` (default false, as Glance since Victoria). */
  md5Checksums?: boolean;
  /** Glance's image_size_cap (default 1 TiB). */
  imageSizeCap?: number;
}

export interface Download {
  /** Undefined when the image has no data yet (Glance answers 204). */
  body?: Blob | ReadableStream<Uint8Array>;
  size: number;
  range?: { start: number; end: number };
  md5?: string | null;
  sha256?: string | null;
}

/** Creates may set these base keys (plus custom string properties). */
const CREATABLE = new Set([
  "id",
  "name",
  "visibility",
  "protected",
  "os_hidden",
  "min_disk",
  "min_ram",
  "disk_format",
  "container_format",
  "owner",
  "tags",
]);

export const TIB = 2 ** 40;

export class Store {
  readonly allowEmptyUploads: boolean;
  readonly md5Checksums: boolean;
  readonly imageSizeCap: number;
  /** Blobs only deactivated images refer to: not served by content address either. */
  readonly withdrawn = new WithdrawnBlobs(this);
  /** Signed, time-limited URLs of single blobs (temp-url.ts). */
  readonly tempUrls = new TempUrls(this);
  private lastNow = 0;

  private constructor(
    readonly dir: string,
    readonly records: RecordStore,
    readonly backend: BlobBackend,
    private readonly unlock: () => void,
    options: StoreOptions,
  ) {
    this.allowEmptyUploads = options.allowEmptyUploads ?? false;
    this.md5Checksums = options.md5Checksums ?? false;
    this.imageSizeCap = options.imageSizeCap ?? TIB;
  }

  /** For tools that open only a store that exists (gc): a folder without one is refused, never made into one. */
  static requireExisting(dir: string) {
    if (!existsSync(join(dir, "images"))) throw new NotAStore(dir);
  }

  static async open(options: StoreOptions): Promise<Store> {
    mkdirSync(options.dir, { recursive: true });
    const unlock = lockStoreDir(options.dir);
    try {
      const records = RecordStore.open(join(options.dir, "images"));
      await options.backend.recover();
      const store = new Store(options.dir, records, options.backend, unlock, options);
      await store.recoverInterrupted();
      return store;
    } catch (e) {
      unlock();
      throw e;
    }
  }

  async close() {
    await this.backend.close();
    this.unlock();
  }

  /** Uploads a killed server left `saving` become retryable again. */
  private async recoverInterrupted() {
    for (const r of this.records.all()) {
      if (r.status === "saving") await this.records.save({ ...r, status: "queued", updated_at: this.now() });
    }
  }

  /** Strictly increasing timestamps, so creation order is also sort order. */
  now(): string {
    const t = Math.max(Date.now(), this.lastNow + 1);
    this.lastNow = t;
    return new Date(t).toISOString();
  }

  // --- records ---

  get(id: string): ImageRecord {
    const r = UUID_RE.test(id) ? this.records.get(id) : undefined;
    if (!r || r.status === "deleted") throw new ImageNotFound(id);
    return r;
  }

  list(query: URLSearchParams): ListPage {
    return listImages(this.records.all(), query);
  }

  async create(body: unknown): Promise<ImageRecord> {
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BadRequest("The image body must be a JSON object");
    const fields: Record<string, unknown> = {};
    const properties: Record<string, string> = {};
    for (const [key, value] of Object.entries(body)) {
      if (isReadOnlyKey(key)) throw new Forbidden(`Attribute '${key}' is read-only.`);
      if (BASE_KEYS.has(key) && !CREATABLE.has(key)) throw new Forbidden(`Attribute '${key}' is reserved.`);
      if (CREATABLE.has(key)) fields[key] = value;
      else {
        if (!PropertyKey.safeParse(key).success) throw new BadRequest(`Invalid property name: ${key.slice(0, 40)}…`);
        if (typeof value !== "string") throw new BadRequest(`Invalid value for property ${key}: custom values are strings`);
        properties[key] = value;
      }
    }
    if (Array.isArray(fields.tags) && fields.tags.length > MAX_TAGS) throw new TooLarge(`Maximum number of tags (${MAX_TAGS}) exceeded`);
    const now = this.now();
    const parsed = ImageRecord.safeParse({
      ...fields,
      id: fields.id ?? randomUUID(),
      status: "queued",
      created_at: now,
      updated_at: now,
      properties,
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new BadRequest(`Invalid value for ${issue.path.join(".") || "image"}: ${issue.message}`);
    }
    const record = parsed.data;
    return this.records.withLock(record.id, async () => {
      if (this.records.get(record.id)) throw new Conflict(`Image with identifier ${record.id} already exists!`);
      this.checkProperties(record);
      return this.records.save(record);
    });
  }

  /**
   * ooo's rules for its own properties: a version names one image of a
   * name, and so does a digest — publishing is idempotent by digest, and
   * this is what makes two concurrent publishes of one build agree.
   */
  private checkProperties(r: ImageRecord) {
    const digest = r.properties.ooo_digest;
    if (digest !== undefined && !isDigest(digest))
      throw new BadRequest(`Invalid value for ooo_digest: ${digest} (${DIGEST_FORMAT})`);
    const others = this.records.all().filter((o) => o.id !== r.id && o.status !== "deleted" && o.name === r.name);
    for (const key of ["ooo_version", "ooo_digest"] as const) {
      const value = r.properties[key];
      const clash = value !== undefined && others.find((o) => o.properties[key] === value);
      if (clash) throw new Conflict(`Image ${r.name} with ${key} ${value} already exists (${clash.id})`);
    }
  }

  async update(id: string, patch: unknown): Promise<ImageRecord> {
    this.get(id);
    return this.records.withLock(id, async () => {
      const updated = applyPatch(this.get(id), patch, this.now());
      this.checkProperties(updated);
      return this.records.save(updated);
    });
  }

  /**
   * Delete the record (a tombstone keeps the id from reuse). The blobs stay:
   * another image or an upload in flight may share them; unreferenced blobs
   * are for garbage collection.
   */
  async delete(id: string) {
    this.get(id);
    await this.records.withLock(id, async () => {
      const r = this.get(id);
      if (r.protected) throw new Forbidden(`Image ${id} is protected and cannot be deleted.`);
      checkTransition(r.status, "deleted");
      const now = this.now();
      await this.records.save({ ...r, status: "deleted", updated_at: now, deleted_at: now });
    });
  }

  async addTag(id: string, tag: string) {
    if (!Tag.safeParse(tag).success) throw new BadRequest(`Invalid tag: ${JSON.stringify(tag)}`);
    this.get(id);
    await this.records.withLock(id, async () => {
      const r = this.get(id);
      if (r.tags.includes(tag)) return;
      if (r.tags.length >= MAX_TAGS) throw new TooLarge(`Maximum number of tags (${MAX_TAGS}) exceeded`);
      await this.records.save({ ...r, tags: [...r.tags, tag], updated_at: this.now() });
    });
  }

  async removeTag(id: string, tag: string) {
    this.get(id);
    await this.records.withLock(id, async () => {
      const r = this.get(id);
      if (!r.tags.includes(tag)) throw new NotFound(`Tag ${tag} not found`);
      await this.records.save({ ...r, tags: r.tags.filter((t) => t !== tag), updated_at: this.now() });
    });
  }

  /**
   * POST …/actions/deactivate: Glance's way to withdraw an image (a bad
   * build) without deleting it: its data can no longer be downloaded, by
   * the file or (ooo) by its chunk index, its manifest or the blobs only it
   * refers to (withdrawn.ts), until it is reactivated. Either
   * call on an image already in the wanted state does nothing.
   */
  async deactivate(id: string) {
    await this.setDeactivated(id, true);
  }

  async reactivate(id: string) {
    await this.setDeactivated(id, false);
  }

  private async setDeactivated(id: string, deactivated: boolean) {
    const [from, to] = deactivated ? (["active", "deactivated"] as const) : (["deactivated", "active"] as const);
    this.get(id);
    await this.records.withLock(id, async () => {
      const r = this.get(id);
      if (r.status === to) return;
      if (r.status !== from)
        throw new Forbidden(`Not allowed to ${deactivated ? "deactivate" : "reactivate"} image in status '${r.status}'`);
      await this.records.save({ ...r, status: to, updated_at: this.now() });
    });
  }

  /** Deactivated images give no data, in any form (Glance's 403). */
  checkDownloadable(r: ImageRecord) {
    if (r.status === "deactivated") throw new Forbidden("The requested image has been deactivated. Image data download is forbidden.");
  }

  // --- image data ---

  /** queued → saving, under the image's lock; Glance's checks first. */
  async beginSaving(id: string): Promise<ImageRecord> {
    this.get(id);
    return this.records.withLock(id, async () => {
      const r = this.get(id);
      if (r.status !== "queued") checkTransition(r.status, "saving");
      if (!r.disk_format || !r.container_format)
        throw new BadRequest("Properties disk_format, container_format must be set prior to saving data.");
      return this.records.save({ ...r, status: "saving", updated_at: this.now() });
    });
  }

  /** A failed upload: back to queued, unless the image was deleted meanwhile. */
  async abandonSaving(id: string) {
    await this.records.withLock(id, async () => {
      const r = this.records.get(id);
      if (r?.status === "saving") await this.records.save({ ...r, status: "queued", updated_at: this.now() });
    });
  }

  /** saving → active with the data's facts; the blob must already be flushed. */
  async finishSaving(id: string, data: { hex: string; size: number; md5?: string }, properties: Record<string, string> = {}) {
    return this.records.withLock(id, async () => {
      const r = this.records.get(id);
      if (!r || r.status === "deleted") throw new Gone(`Image ${id} was deleted while its data was being saved`);
      if (r.status !== "saving") throw new Conflict(`Image ${id} is ${r.status}, not saving`);
      return this.records.save({
        ...r,
        status: "active",
        size: data.size,
        checksum: data.md5 ?? null,
        os_hash_algo: "sha256",
        os_hash_value: data.hex,
        properties: { ...r.properties, ...properties },
        updated_at: this.now(),
      });
    });
  }

  /** Set (and remove) properties only the store may set (ooo_chunk_index, ooo_manifest, ooo_manifest_signature). */
  async setServerProperties(id: string, properties: Record<string, string>, remove: string[] = []) {
    return this.records.withLock(id, async () => {
      const r = this.get(id);
      const kept = Object.fromEntries(Object.entries(r.properties).filter(([k]) => !remove.includes(k)));
      return this.records.save({ ...r, properties: { ...kept, ...properties }, updated_at: this.now() });
    });
  }

  /** PUT /v2/images/{id}/file: stream, verify, then activate. */
  async upload(
    id: string,
    body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: { declaredSize?: number; allowEmpty?: boolean } = {},
  ): Promise<ImageRecord> {
    const r = await this.beginSaving(id);
    const expect = r.properties.ooo_digest?.slice("sha256:".length);
    let data;
    try {
      data = await ingest(this.backend, body, {
        expect,
        declaredSize: options.declaredSize,
        maxSize: this.imageSizeCap,
        allowEmpty: options.allowEmpty || this.allowEmptyUploads,
        md5: this.md5Checksums,
        large: true,
      });
      await this.backend.flush();
    } catch (e) {
      await this.abandonSaving(id);
      throw e;
    }
    return this.finishSaving(id, data);
  }

  /** GET /v2/images/{id}/file, whole or a Range of it. */
  async download(id: string, range: string | null, contentRange: string | null): Promise<Download> {
    const r = this.get(id);
    this.checkDownloadable(r);
    if (r.status !== "active" || !r.os_hash_value || r.size === null) return { size: 0 };
    const parsed = parseRange(range, contentRange, r.size);
    const body = await this.backend.read(r.os_hash_value, parsed);
    return { body, size: r.size, range: parsed, md5: r.checksum, sha256: r.os_hash_value };
  }
}
