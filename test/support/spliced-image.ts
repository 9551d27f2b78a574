import { encodeHeader, padding, type TarEntry } from "../../lib/tar/encode.ts";
import { EntryIndexer } from "../../lib/tar/entries.ts";
import type { TestImage } from "./images.ts";
import { writeManifest } from "./manifest.ts";

/**
 * A build output (OUT.tar, OUT.manifest.json) whose root is `image`'s
 * canonical tar with one more entry right after the entry `after`: a valid,
 * publishable image that differs from `image` by exactly that entry — such
 * as one listing a file beneath a symlink of `image`'s own root, which no
 * real tree can hold.
 */
export async function withEntryAfter(image: TestImage, out: string, after: string, entry: TarEntry, data: Buffer = Buffer.alloc(0)): Promise<{ base: string; digest: string }> {
  const tar = Bun.file(`${image.base}.tar`);
  const entries = new EntryIndexer();
  for await (const piece of tar.stream()) entries.push(piece);
  let offset = 0;
  const listed = entries.finish();
  const at = listed.findIndex((e) => e.path === after);
  if (at < 0) throw new Error(`${image.base}.tar has no entry ${after}`);
  for (const e of listed.slice(0, at + 1)) offset += e.length;
  const sink = Bun.file(`${out}.tar`).writer();
  for await (const piece of tar.slice(0, offset).stream()) sink.write(piece);
  sink.write(Buffer.concat([encodeHeader({ ...entry, size: data.length }), data, padding(data.length)]));
  for await (const piece of tar.slice(offset).stream()) sink.write(piece);
  await sink.end();
  const manifest = writeManifest(out, { name: image.manifest.name, sourceDateEpoch: image.manifest.sourceDateEpoch });
  return { base: out, digest: manifest.digest };
}
