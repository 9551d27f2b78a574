import { type ImageRef, parseImageRef } from "../../wire/image-ref.ts";
import type { StoreClient } from "./client.ts";
import { BadImageRef, ImageUnavailable, StoreRequestFailed, UnknownImage } from "./errors.ts";
import type { GlanceImage } from "./image.ts";

/** Text from a command line or a node as a reference, or BadImageRef saying why it is none. */
export function imageRef(text: string): ImageRef {
  const parsed = parseImageRef(text);
  if (parsed.problem !== undefined) throw new BadImageRef(text, parsed.problem);
  return parsed.ref;
}

/** List filters, in the order they are tried: NAME@X is the tag X, else the version X. */
function queriesOf(ref: ImageRef): Record<string, string>[] {
  switch (ref.form) {
    case "id":
      return [];
    case "digest":
      return [{ ooo_digest: ref.digest }];
    case "name":
      return [{ name: ref.name }];
    case "tag":
      return [{ name: ref.name, tag: ref.tag }];
    case "tag-or-version":
      return [
        { name: ref.name, tag: ref.label },
        { name: ref.name, ooo_version: ref.label },
      ];
    case "name-digest":
      return [{ name: ref.name, ooo_digest: ref.digest }];
  }
}

/**
 * Find the image a reference names (wire/image-ref.ts has the grammar): the
 * newest active image that matches, or for an id that image whatever its
 * state. Every command and the stack files resolve through here, so a
 * reference means one image wherever it is written.
 */
export async function resolveImage(client: StoreClient, reference: string | ImageRef): Promise<GlanceImage> {
  const ref = typeof reference === "string" ? imageRef(reference) : reference;
  if (ref.form === "id") {
    try {
      return await client.getImage(ref.id);
    } catch (e) {
      if (e instanceof StoreRequestFailed && e.status === 404) throw new UnknownImage(ref.text, "no image has this id");
      throw e;
    }
  }
  const queries = queriesOf(ref);
  const newest = { sort_key: "created_at", sort_dir: "desc", limit: 1 };
  for (const query of queries) for await (const image of client.listImages({ ...query, status: "active", ...newest }, 1)) return image;
  // One that matches but is not active (withdrawn, no data yet): say so, since
  // "not found" would send its user looking for a typo.
  for (const query of queries)
    for await (const image of client.listImages({ ...query, ...newest }, 1)) throw new ImageUnavailable(`${ref.text} (${image.id})`, image.status);
  throw new UnknownImage(ref.text, await whatThereIs(client, ref));
}

/** What the store has instead: the name's tags and versions, or names close to it. */
async function whatThereIs(client: StoreClient, ref: Exclude<ImageRef, { form: "id" }>): Promise<string> {
  if (ref.form === "digest") return "no image has this digest";
  const images: GlanceImage[] = [];
  for await (const image of client.listImages({ name: ref.name })) images.push(image);
  if (images.length) return `${ref.name} has ${labelsOf(images)}`;
  const names = new Set<string>();
  for await (const image of client.listImages()) if (image.name) names.add(image.name);
  const near = [...names].filter((n) => isNear(n, ref.name)).sort();
  if (near.length) return `no image is named ${ref.name}; did you mean ${listed(near, "or")}?`;
  return names.size ? `no image is named ${ref.name} (names: ${listed([...names].sort(), "and")})` : "the store has no images";
}

function labelsOf(images: GlanceImage[]): string {
  const tags = [...new Set(images.flatMap((i) => i.tags))].sort();
  const versions = [...new Set(images.map((i) => i.ooo_version).filter((v) => v !== undefined))];
  const parts = [];
  if (tags.length) parts.push(`tag${tags.length === 1 ? "" : "s"} ${listed(tags, "and")}`);
  if (versions.length) parts.push(`version${versions.length === 1 ? "" : "s"} ${versionsText(versions)}`);
  return parts.length ? parts.join(", and ") : `${images.length} image${images.length === 1 ? "" : "s"} without tags or versions`;
}

/** 1–3 for a run of whole numbers, else a list. */
function versionsText(versions: string[]): string {
  const sorted = versions.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const numbers = sorted.map(Number);
  const run = sorted.length > 2 && sorted.every((v) => /^\d+$/.test(v)) && numbers.every((n, i) => i === 0 || n === numbers[i - 1]! + 1);
  return run ? `${sorted[0]}–${sorted.at(-1)}` : listed(sorted, "and");
}

function listed(items: string[], and: string, max = 8): string {
  const shown = items.length > max ? [...items.slice(0, max), `${items.length - max} more`] : items;
  return shown.length < 2 ? shown.join("") : `${shown.slice(0, -1).join(", ")} ${and} ${shown.at(-1)}`;
}

/** A likely typo: one name holds the other, or they are an edit or two apart (one, for short names). */
function isNear(a: string, b: string): boolean {
  const [x, y] = [a.toLowerCase(), b.toLowerCase()];
  if (Math.min(x.length, y.length) >= 3 && (x.includes(y) || y.includes(x))) return true;
  let row = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const next = [i];
    for (let j = 1; j <= y.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    row = next;
  }
  return row[y.length]! <= (y.length <= 3 ? 1 : 2);
}
