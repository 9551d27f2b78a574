import type { StoreClient } from "../store/client/client.ts";
import { ImageNotFound } from "../store/errors.ts";
import { ImageUnavailable } from "../store/client/errors.ts";
import { newestActive } from "../store/client/resolve.ts";
import { type GlanceImage } from "../store/client/image.ts";
import { UUID_RE } from "../wire/image-ref.ts";

/**
 * `ooo promote NAME [REF] --tag stable`: after an image passed its boot
 * test, move a tag (a Glance tag) onto it and off every other image of that
 * name. REF is a version, a digest (sha256:…) or an image id; without it the
 * newest active image of NAME. The tag is added before it is removed from
 * the others, so a node resolving NAME:TAG always finds an image (for a
 * moment two, and resolution takes the newest).
 */
export interface PromoteReport {
  image: GlanceImage;
  tag: string;
  /** Images the tag was taken off. */
  removedFrom: GlanceImage[];
}

async function target(client: StoreClient, name: string, ref: string | undefined): Promise<GlanceImage> {
  if (ref && UUID_RE.test(ref)) {
    const image = await client.getImage(ref);
    if (image.name !== name) throw new ImageNotFound(`${ref} (it is named ${image.name}, not ${name})`);
    return image;
  }
  const query: Record<string, string> = !ref ? { name } : ref.startsWith("sha256:") ? { name, ooo_digest: ref } : { name, ooo_version: ref };
  return newestActive(client, query, ref ? `${name}@${ref}` : name);
}

export async function promote(options: { client: StoreClient; name: string; ref?: string; tag: string }): Promise<PromoteReport> {
  const { client, name, tag } = options;
  const image = await target(client, name, options.ref);
  if (image.status !== "active") throw new ImageUnavailable(`${name} (${image.id})`, image.status);
  await client.addTag(image.id, tag);
  const removedFrom: GlanceImage[] = [];
  // Hidden images are left out of a list unless asked for: ask both ways.
  for (const os_hidden of ["false", "true"]) {
    for await (const other of client.listImages({ name, tag, os_hidden })) {
      if (other.id === image.id) continue;
      await client.removeTag(other.id, tag);
      removedFrom.push(other);
    }
  }
  return { image: await client.getImage(image.id), tag, removedFrom };
}
