import { UsageError } from "../lib/errors.ts";
import type { StoreClient } from "../store/client/client.ts";
import { ImageUnavailable, UnknownImage } from "../store/client/errors.ts";
import type { GlanceImage } from "../store/client/image.ts";
import { imageRef, resolveImage } from "../store/client/resolve.ts";
import { type ImageRef, UUID_RE } from "../wire/image-ref.ts";

/**
 * `ooo promote REF --tag stable`: after an image passed its boot test, move
 * a tag (a Glance tag) onto it and off every other image of its name. REF is
 * any image reference (wire/image-ref.ts). The tag is added before it is
 * removed from the others, so a node resolving NAME:TAG always finds an
 * image (for a moment two, and resolution takes the newest).
 */
export interface PromoteReport {
  image: GlanceImage;
  tag: string;
  /** Images the tag was taken off. */
  removedFrom: GlanceImage[];
}

/**
 * The image to promote, from the command line: a reference, or the older
 * two-word form `NAME X`, which means NAME@X — or, with an id for X, that
 * image if it is named NAME.
 */
export function promoteTarget(image: string, second?: string): { ref: ImageRef; name?: string } {
  if (second === undefined) return { ref: imageRef(image) };
  const first = imageRef(image);
  if (first.form !== "name") throw new UsageError(`promote takes a reference (${image}) or NAME and a version, not both`);
  return UUID_RE.test(second) ? { ref: imageRef(second), name: first.name } : { ref: imageRef(`${first.name}@${second}`) };
}

export async function promote(options: { client: StoreClient; image: string | ImageRef; name?: string; tag: string }): Promise<PromoteReport> {
  const { client, tag } = options;
  const image = await resolveImage(client, options.image);
  const ref = typeof options.image === "string" ? options.image : options.image.text;
  if (options.name !== undefined && image.name !== options.name)
    throw new UnknownImage(`${options.name} ${ref}`, `image ${image.id} is named ${image.name}, not ${options.name}`);
  if (image.status !== "active") throw new ImageUnavailable(`${ref} (${image.id})`, image.status);
  await client.addTag(image.id, tag);
  const removedFrom: GlanceImage[] = [];
  // Hidden images are left out of a list unless asked for: ask both ways.
  // An image without a name has no others to take the tag off.
  for (const os_hidden of image.name ? ["false", "true"] : []) {
    for await (const other of client.listImages({ name: image.name!, tag, os_hidden })) {
      if (other.id === image.id) continue;
      await client.removeTag(other.id, tag);
      removedFrom.push(other);
    }
  }
  return { image: await client.getImage(image.id), tag, removedFrom };
}
