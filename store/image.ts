import { z } from "zod";
import { UUID_RE } from "../wire/image-ref.ts";

/**
 * An image record as the store keeps it (`images/<id>.json`) and as the
 * Glance v2 API shows it. The server's: clients read images as
 * store/client/image.ts's GlanceImage.
 *
 * ooo's own facts about an image travel as Glance custom properties, so that
 * Glance clients see them and a real Glance can hold them too:
 * - `ooo_digest`: `sha256:<hex>` of the image data, set by the publisher when
 *   it creates the record; the store refuses an upload that does not match it.
 * - `ooo_version`: the publisher's version of the image, unique per name.
 * - `ooo_chunk_index`, `ooo_manifest`: digests of the chunk index and build
 *   manifest blobs; only the store sets them (PUT …/chunk-index, …/manifest).
 */

// Glance's defaults (glance-api.conf [image_format]), plus `tar`: ooo's
// canonical root stream. Glance lets operators extend these lists.
export const DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop", "tar"] as const;
export const CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"] as const;
export const VISIBILITIES = ["public", "private", "shared", "community"] as const;
export const STATUSES = [
  "queued",
  "saving",
  "active",
  "killed",
  "deleted",
  "uploading",
  "importing",
  "pending_delete",
  "deactivated",
] as const;

export const ImageStatus = z.enum(STATUSES);
export type ImageStatus = z.infer<typeof ImageStatus>;

const Uuid = z.string().regex(UUID_RE, "an image id is a UUID");

/**
 * Names and tags end up in URLs, file names and log lines: refuse anything
 * that could walk a path (`/`, `\`, `.`, `..`) or forge a line (control
 * characters). Glance itself allows any string up to 255 characters.
 */
function safeText(what: string) {
  return z
    .string()
    .max(255, `${what} is at most 255 characters`)
    .refine((s) => !/[/\\\u0000-\u001f\u007f]/.test(s), `${what} must not contain '/', '\\' or control characters`)
    .refine((s) => s !== "." && s !== "..", `${what} must not be '.' or '..'`);
}
const ImageName = safeText("an image name");
export const Tag = safeText("a tag").refine((s) => s.length > 0, "a tag must not be empty");

/** A custom property: string key and value, as Glance requires. */
export const PropertyKey = z.string().min(1).max(255);
const PropertyValue = z.string().max(65535);

export const ImageRecord = z.object({
  id: Uuid,
  name: ImageName.nullable().default(null),
  status: ImageStatus,
  visibility: z.enum(VISIBILITIES).default("shared"),
  protected: z.boolean().default(false),
  os_hidden: z.boolean().default(false),
  checksum: z.string().nullable().default(null).describe("md5 of the data, hex"),
  os_hash_algo: z.string().max(64).nullable().default(null),
  os_hash_value: z.string().max(128).nullable().default(null),
  size: z.number().int().nonnegative().nullable().default(null),
  virtual_size: z.number().int().nonnegative().nullable().default(null),
  min_disk: z.number().int().nonnegative().default(0),
  min_ram: z.number().int().nonnegative().default(0),
  disk_format: z.enum(DISK_FORMATS).nullable().default(null),
  container_format: z.enum(CONTAINER_FORMATS).nullable().default(null),
  owner: z.string().max(255).nullable().default(null),
  tags: z.array(Tag).default([]),
  created_at: z.string().describe("ISO 8601 with milliseconds; shown to the second"),
  updated_at: z.string(),
  deleted_at: z.string().optional(),
  properties: z.record(PropertyKey, PropertyValue).default({}),
});
export type ImageRecord = z.infer<typeof ImageRecord>;

/** Keys every Glance image shows, whether set or not. */
export const BASE_KEYS = new Set([
  "id",
  "name",
  "status",
  "visibility",
  "protected",
  "os_hidden",
  "checksum",
  "os_hash_algo",
  "os_hash_value",
  "owner",
  "size",
  "virtual_size",
  "min_disk",
  "min_ram",
  "disk_format",
  "container_format",
  "tags",
  "created_at",
  "updated_at",
  "self",
  "file",
  "schema",
  "direct_url",
  "stores",
  "locations",
]);

/** Keys a client may never set (Glance: 403 on create or update). */
const READ_ONLY_KEYS = new Set([
  "status",
  "checksum",
  "os_hash_algo",
  "os_hash_value",
  "size",
  "virtual_size",
  "created_at",
  "updated_at",
  "self",
  "file",
  "schema",
  "direct_url",
  "stores",
  "locations",
  "location",
  "deleted",
  "deleted_at",
  // ooo: set only through their own endpoints, after the store checked them.
  "ooo_chunk_index",
  "ooo_manifest",
  "ooo_manifest_signature",
]);

export function isReadOnlyKey(key: string) {
  return READ_ONLY_KEYS.has(key) || key.startsWith("os_glance");
}

/** Glance shows times to the second, with a `Z`. */
export function glanceTime(iso: string) {
  return iso.replace(/\.\d+Z$/, "Z");
}

/** The image as Glance v2 shows it: base keys always, custom keys once set, root-relative links. */
export function glanceView(r: ImageRecord): Record<string, unknown> {
  return {
    ...r.properties,
    id: r.id,
    name: r.name,
    status: r.status,
    visibility: r.visibility,
    protected: r.protected,
    os_hidden: r.os_hidden,
    checksum: r.checksum,
    os_hash_algo: r.os_hash_algo,
    os_hash_value: r.os_hash_value,
    owner: r.owner,
    size: r.size,
    virtual_size: r.virtual_size,
    min_disk: r.min_disk,
    min_ram: r.min_ram,
    disk_format: r.disk_format,
    container_format: r.container_format,
    tags: r.tags,
    created_at: glanceTime(r.created_at),
    updated_at: glanceTime(r.updated_at),
    self: `/v2/images/${r.id}`,
    file: `/v2/images/${r.id}/file`,
    schema: "/v2/schemas/image",
  };
}
