import { z } from "zod";

/**
 * An image as a client reads it from any Glance v2 server (ours or a real
 * one): the keys ooo uses, checked; everything else kept as it came.
 */
export const GlanceImage = z.looseObject({
  id: z.string(),
  name: z.string().nullable().optional(),
  status: z.string(),
  size: z.number().nullable().optional(),
  checksum: z.string().nullable().optional(),
  os_hash_algo: z.string().nullable().optional(),
  os_hash_value: z.string().nullable().optional(),
  disk_format: z.string().nullable().optional(),
  container_format: z.string().nullable().optional(),
  tags: z.array(z.string()).default([]),
  created_at: z.string().optional(),
  updated_at: z.string().optional(),
  ooo_digest: z.string().optional(),
  ooo_version: z.string().optional(),
  ooo_chunk_index: z.string().optional(),
  ooo_manifest: z.string().optional(),
  ooo_manifest_signature: z.string().optional(),
});
export type GlanceImage = z.infer<typeof GlanceImage>;
