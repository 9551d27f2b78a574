import { ParallelHash } from "../parallel-hash.ts";
import { canonicalTar, type CanonicalOptions } from "./canonical.ts";

/**
 * The content address of the tree at `root`: the sha256 of its canonical
 * stream, as an image digest names it (`sha256:HEX`). The stream is made
 * on this thread and hashed on another (lib/parallel-hash.ts), so the two
 * halves of the work run side by side; nothing is written anywhere.
 */
export async function canonicalDigest(root: string, options: CanonicalOptions): Promise<string> {
  const hash = new ParallelHash(["sha256"]);
  try {
    for await (const piece of canonicalTar(root, options)) await hash.update(piece);
    const [hex] = await hash.digest();
    return `sha256:${hex}`;
  } catch (e) {
    await hash.cancel();
    throw e;
  }
}
