import { CONTAINER_FORMATS, DISK_FORMATS, STATUSES, VISIBILITIES } from "./image.ts";

/**
 * The JSON Schemas served at /v2/schemas/image and /v2/schemas/images. The
 * glance CLI builds its models from them and validates every image body it
 * sends or receives against them, so they must describe what
 * this server returns exactly: nullable where we return null, our formats,
 * os_hash_value up to 128 characters, custom values as strings.
 */
const nullableString = (description: string, extra: Record<string, unknown> = {}) => ({
  type: ["null", "string"],
  description,
  ...extra,
});
const UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";

export function imageSchema() {
  return {
    name: "image",
    properties: {
      id: { type: "string", description: "An identifier for the image", pattern: UUID_PATTERN },
      name: nullableString("Descriptive name for the image", { maxLength: 255 }),
      status: { type: "string", readOnly: true, description: "Status of the image", enum: [...STATUSES] },
      visibility: { type: "string", description: "Scope of image accessibility", enum: [...VISIBILITIES] },
      protected: { type: "boolean", description: "If true, image will not be deletable." },
      os_hidden: { type: "boolean", description: "If true, image will not appear in default image list response." },
      checksum: nullableString("md5 hash of image contents.", { readOnly: true, maxLength: 32 }),
      os_hash_algo: nullableString("Algorithm to calculate the os_hash_value", { readOnly: true, maxLength: 64 }),
      os_hash_value: nullableString("Hexdigest of the image contents using the algorithm specified by the os_hash_algo", {
        readOnly: true,
        maxLength: 128,
      }),
      owner: nullableString("Owner of the image", { maxLength: 255 }),
      size: { type: ["null", "integer"], readOnly: true, description: "Size of image file in bytes" },
      virtual_size: { type: ["null", "integer"], readOnly: true, description: "Virtual size of image in bytes" },
      container_format: { ...nullableString("Format of the container"), enum: [null, ...CONTAINER_FORMATS] },
      disk_format: { ...nullableString("Format of the disk (tar: ooo's canonical root stream)"), enum: [null, ...DISK_FORMATS] },
      created_at: { type: "string", readOnly: true, description: "Date and time of image registration" },
      updated_at: { type: "string", readOnly: true, description: "Date and time of the last image modification" },
      tags: { type: "array", description: "List of strings related to the image", items: { type: "string", maxLength: 255 } },
      direct_url: { type: "string", readOnly: true, description: "URL to access the image file kept in external store" },
      min_ram: { type: "integer", description: "Amount of ram (in MB) required to boot image." },
      min_disk: { type: "integer", description: "Amount of disk space (in GB) required to boot image." },
      self: { type: "string", readOnly: true, description: "An image self url" },
      file: { type: "string", readOnly: true, description: "An image file url" },
      schema: { type: "string", readOnly: true, description: "An image schema url" },
      // ooo's properties, declared like Glance's schema-image.json custom ones.
      ooo_digest: { type: "string", is_base: false, description: "sha256:<hex> of the image data, its content address" },
      ooo_version: { type: "string", is_base: false, description: "Version of this image among those of its name" },
      ooo_chunk_index: { type: "string", is_base: false, readOnly: true, description: "Digest of the image's chunk index blob" },
      ooo_manifest: { type: "string", is_base: false, readOnly: true, description: "Digest of the image's build manifest blob" },
      kernel_id: { type: ["null", "string"], is_base: false, pattern: UUID_PATTERN, description: "ID of the kernel image (AMI-style boot)" },
      ramdisk_id: { type: ["null", "string"], is_base: false, pattern: UUID_PATTERN, description: "ID of the ramdisk image (AMI-style boot)" },
      architecture: { type: "string", is_base: false, description: "Operating system architecture" },
    },
    additionalProperties: { type: "string" },
    links: [
      { rel: "self", href: "{self}" },
      { rel: "enclosure", href: "{file}" },
      { rel: "describedby", href: "{schema}" },
    ],
  };
}

export function imagesSchema() {
  return {
    name: "images",
    properties: {
      images: { type: "array", items: imageSchema() },
      schema: { type: "string" },
      first: { type: "string" },
      next: { type: "string" },
    },
    links: [
      { rel: "first", href: "{first}" },
      { rel: "next", href: "{next}" },
      { rel: "describedby", href: "{schema}" },
    ],
  };
}
