import { z } from "zod";
import { BadRequest, Conflict, Forbidden, TooLarge } from "./errors.ts";
import { BASE_KEYS, ImageRecord, isReadOnlyKey } from "./image.ts";

/**
 * Glance's image update: a JSON patch (`application/openstack-images-v2.1-json-patch`,
 * or the deprecated v2.0 type) of single-level paths. What Glance does and
 * the glance CLI relies on:
 * - `add` sets a key whether or not it exists (v2.1); `replace` needs an
 *   existing custom key (409) but may set an unset base key; `remove` of a
 *   base key is 403, of a missing custom key 409;
 * - read-only keys (status, checksum, size …, our ooo_chunk_index and
 *   ooo_manifest) are 403, and so are the formats once data is uploaded;
 * - custom values are strings (400 otherwise); at most 128 tags (413).
 */
export const PATCH_TYPES = ["application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch"];

const Operation = z.object({
  op: z.enum(["add", "replace", "remove"]),
  path: z.string().regex(/^\/[^/]+$/, "a path names one key: /key"),
  value: z.unknown().optional(),
});
const Patch = z.array(Operation);

export const MAX_TAGS = 128;

/** Keys a client may set that Glance keeps as columns, not properties. */
const SETTABLE_BASE = new Set([
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
/** Describe the data, so they may change only before it is uploaded. */
const DATA_KEYS = new Set(["disk_format", "container_format", "ooo_digest"]);

function unescapePointer(path: string) {
  return path.slice(1).replace(/~1/g, "/").replace(/~0/g, "~");
}

export function applyPatch(record: ImageRecord, body: unknown, now: string): ImageRecord {
  const parsed = Patch.safeParse(body);
  if (!parsed.success) throw new BadRequest(`Invalid JSON patch: ${parsed.error.issues[0]!.message}`);
  const base: Record<string, unknown> = { ...record, properties: { ...record.properties } };
  const props = base.properties as Record<string, string>;
  for (const { op, path, value } of parsed.data) {
    const key = unescapePointer(path);
    if (key === "id" || isReadOnlyKey(key)) throw new Forbidden(`Attribute '${key}' is read-only.`);
    if (BASE_KEYS.has(key) && !SETTABLE_BASE.has(key)) throw new Forbidden(`Attribute '${key}' is reserved.`);
    if (DATA_KEYS.has(key) && record.status !== "queued")
      throw new Forbidden(`Attribute ${key} can be only replaced for a queued image.`);
    if (op !== "remove" && value === undefined) throw new BadRequest(`Operation ${op} on ${path} needs a value`);
    if (SETTABLE_BASE.has(key)) {
      if (op === "remove") throw new Forbidden(`Properties ${key} cannot be deleted`);
      base[key] = value;
      continue;
    }
    if (op === "remove") {
      if (!(key in props)) throw new Conflict(`Property ${key} does not exist.`);
      delete props[key];
      continue;
    }
    if (op === "replace" && !(key in props)) throw new Conflict(`Property ${key} does not exist.`);
    if (typeof value !== "string") throw new BadRequest(`Invalid value for property ${key}: custom values are strings`);
    props[key] = value;
  }
  if (Array.isArray(base.tags) && base.tags.length > MAX_TAGS) throw new TooLarge(`Maximum number of tags (${MAX_TAGS}) exceeded`);
  base.updated_at = now;
  const result = ImageRecord.safeParse(base);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new BadRequest(`Invalid value for ${issue.path.join(".") || "image"}: ${issue.message}`);
  }
  return result.data;
}
