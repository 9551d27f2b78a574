import type { StoreClient } from "./client.ts";
import { ImageNotFound } from "../errors.ts";
import { ImageUnavailable } from "./errors.ts";
import { type GlanceImage } from "./image.ts";
import { UUID_RE } from "../../wire/image-ref.ts";

/**
 * Find an image by what a person or a node knows of it:
 *   ID                   the image id (a UUID)
 *   sha256:HEX           its content address, whatever its name
 *   NAME                 the newest active image of that name
 *   NAME:TAG             … carrying that tag (e.g. debian-minimal:stable)
 *   NAME@VERSION         … with that ooo_version
 *   NAME@sha256:HEX      … with that digest
 * When several match (a tag being moved), the newest wins.
 */
export function parseImageRef(ref: string): Record<string, string> | { id: string } {
  if (UUID_RE.test(ref)) return { id: ref };
  if (/^sha256:[0-9a-f]{64}$/.test(ref)) return { ooo_digest: ref };
  const at = ref.indexOf("@");
  if (at > 0) {
    const [name, what] = [ref.slice(0, at), ref.slice(at + 1)];
    return what.startsWith("sha256:") ? { name, ooo_digest: what } : { name, ooo_version: what };
  }
  const colon = ref.lastIndexOf(":");
  if (colon > 0) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { name: ref };
}

export async function resolveImage(client: StoreClient, ref: string): Promise<GlanceImage> {
  const query = parseImageRef(ref);
  if ("id" in query && Object.keys(query).length === 1) return client.getImage(query.id as string);
  return newestActive(client, query, ref);
}

/**
 * The newest active image matching `query` (list filters). When none is
 * active, one that matches may be deactivated or still without data: say
 * so, since "not found" would send its user looking for a typo. `ref` names
 * the image in the error.
 */
export async function newestActive(client: StoreClient, query: Record<string, string>, ref: string): Promise<GlanceImage> {
  const newest = { sort_key: "created_at", sort_dir: "desc", limit: 1 };
  for await (const image of client.listImages({ ...query, status: "active", ...newest }, 1)) return image;
  for await (const image of client.listImages({ ...query, ...newest }, 1)) throw new ImageUnavailable(`${ref} (${image.id})`, image.status);
  throw new ImageNotFound(ref);
}
