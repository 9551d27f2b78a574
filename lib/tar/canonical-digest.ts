import { Sha256Pipe } from "../sha256-pipe.ts";
import { canonicalEntries, fileData, type CanonicalOptions } from "./canonical.ts";
import { END_OF_ARCHIVE } from "./encode.ts";

/**
 * The content address of the tree at `root`: the sha256 of its canonical
 * stream, as an image digest names it (`sha256:HEX`), with nothing written
 * anywhere: the stream goes to sha256sum (lib/sha256-pipe.ts), its file
 * data read into one reused buffer (a fresh buffer per MiB, as
 * canonicalTar hands out, cost as much again under emulation).
 */
export async function canonicalDigest(root: string, options: CanonicalOptions): Promise<string> {
  const hash = new Sha256Pipe();
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (const entry of canonicalEntries(root, options)) {
      hash.put(entry.header);
      if (entry.data) for (const piece of fileData(entry.data, () => buffer)) hash.put(piece);
    }
    hash.put(END_OF_ARCHIVE);
    return await hash.digest();
  } catch (e) {
    hash.abort();
    throw e;
  }
}
