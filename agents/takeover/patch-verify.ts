import { createHash } from "node:crypto";
import { lstatSync } from "node:fs";
import { join } from "node:path";
import { Sha256Pipe } from "../../lib/sha256-pipe.ts";
import { canonicalEntries, describeNode, fileData, type CanonicalOptions } from "../../lib/tar/canonical.ts";
import { encodeHeader, END_OF_ARCHIVE } from "../../lib/tar/encode.ts";
import { entriesText, entryOffsets, TAR_ENTRIES_ARTIFACT, type ChunkIndex } from "../../wire/chunk-index.ts";
import type { Manifest } from "../../wire/manifest.ts";
import { UntrustedImage } from "../errors.ts";
import type { PatchEntry, PatchPlan } from "./patch-install.ts";

/**
 * What makes a patched root (patch-install.ts) the image the node's
 * metadata names, at the price of hashing the image once — under TCG the
 * bulk of an upgrade's CPU, so it runs beside the fetch, the copy and the
 * patch instead of after them:
 *
 * 1. assembledDigest: the sha256 of the new image's stream as the patch
 *    assembles it — every entry the patch writes, from the fetched bytes,
 *    and every entry it keeps from the running root, from the running
 *    root's own canonical bytes (not from the store's word that they are
 *    unchanged). It must be the named digest: so the store's index, its
 *    per-entry hashes and the fetched bytes are all that image's.
 * 2. checkWritten: each entry the patch wrote, read back from the slot,
 *    has the bytes those hashes name, and each it removed is gone.
 *
 * The rest of the slot is a block copy of the running root (mounted
 * read-only), whose bytes (1) hashed. The patched root, hashed whole
 * instead, took twice as long on a node: it can start only once written.
 *
 * When a trusted key signed both images' manifests and each names its tar
 * entries (entriesSigned), (1) is not needed: the entries the store lists
 * are the publisher's, so an entry whose path and sha256 are the same in
 * both is a file the running root — installed and checked against its own
 * digest, mounted read-only — already holds, and the patch writes all the
 * others, each checked by (2). An upgrade then hashes what it changes, not
 * 400 MB of root (under TCG, twenty seconds).
 */

/** The patched root differs from the image: the patch's doing, not the store's. Another way of writing is tried. */
export class PatchedRootDiffers extends Error {}

/**
 * Whether the store's index of an image lists the entries the image's signed
 * manifest names (its tar-entries artifact). False when the manifest names
 * none (a build from before them): the root is then hashed whole. Entries
 * other than those it names are the store's lie: UntrustedImage.
 */
export function entriesSigned(index: ChunkIndex, manifest: Manifest, image: string): boolean {
  const named = manifest.artifacts.find((a) => a.type === TAR_ENTRIES_ARTIFACT);
  if (!named || !index.entries) return false;
  if (index.digest !== manifest.digest) throw new UntrustedImage(`the store's chunk index for ${image} is of ${index.digest}, not of ${manifest.digest}, the root its signed manifest names`);
  const actual = createHash("sha256").update(entriesText(index.entries)).digest("hex");
  if (actual !== named.sha256)
    throw new UntrustedImage(`the store's chunk index for ${image} lists other tar entries than its signed manifest names (sha256 ${actual}, not ${named.sha256})`, {
      hint: "the node installs only what a trusted key signed; check what the store serves for this image",
    });
  return true;
}

/** Yield to the event loop this often (bytes): the fetch runs beside the hashing, on the same thread. */
const YIELD_EVERY = 1 << 20;

export function assembledDigest(o: {
  next: ChunkIndex;
  plan: PatchPlan;
  /** The running root, mounted read-only. */
  running: string;
  options: CanonicalOptions;
  /** The bytes of an entry the patch writes, once fetched. */
  written: (e: PatchEntry) => Promise<Buffer>;
}): { digest: Promise<string>; abort: () => void } {
  const hash = new Sha256Pipe();
  let aborted = false;
  let since = 0;
  const put = async (bytes: Uint8Array) => {
    hash.put(bytes);
    since += bytes.length;
    if (since < YIELD_EVERY) return;
    since = 0;
    await new Promise((resolve) => setImmediate(resolve));
    if (aborted) throw new Error("the digest of the assembled root was abandoned");
  };
  const run = async () => {
    const fresh = new Map(o.plan.extract.map((e) => [e.path, e]));
    const old = canonicalEntries(o.running, o.options);
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (const e of entryOffsets(o.next)) {
      const written = fresh.get(e.path);
      if (written) {
        await put(await o.written(written));
        continue;
      }
      // Kept: the running root's entry at this path, in the same order (both streams are sorted alike).
      let kept = old.next();
      while (!kept.done && kept.value.path !== e.path) kept = old.next();
      if (kept.done) throw new PatchedRootDiffers(`the image keeps ${e.path} from the running root, which has no such entry`);
      await put(kept.value.header);
      if (kept.value.data) for (const piece of fileData(kept.value.data, () => buffer)) await put(piece);
    }
    await put(END_OF_ARCHIVE);
    return hash.digest();
  };
  const digest = run().catch((e) => {
    hash.abort();
    throw e;
  });
  digest.catch(() => {}); // the caller awaits it, or has failed already
  return {
    digest,
    abort: () => {
      aborted = true;
      hash.abort();
    },
  };
}

/** Each entry the patch wrote into `root` is, read back, the bytes the index's sha256 names; each it removed is gone. */
export function checkWritten(plan: PatchPlan, root: string, options: CanonicalOptions) {
  const at = (path: string) => join(root, path);
  for (const e of plan.extract) {
    const node = describeNode(at(e.path), e.path, options);
    if (!node) throw new PatchedRootDiffers(`${e.path} in the new root is a socket`);
    const parts = [];
    if (e.hardlinkTo !== undefined) {
      const target = lstatSync(at(e.hardlinkTo));
      if (target.ino !== node.st.ino || target.dev !== node.st.dev) throw new PatchedRootDiffers(`${e.path} in the new root is not a hard link to ${e.hardlinkTo}`);
      parts.push(encodeHeader({ ...node.entry, type: "hardlink", linkpath: e.hardlinkTo, size: 0 }));
    } else {
      parts.push(encodeHeader(node.entry));
      if (node.entry.type === "file") parts.push(...fileData({ path: at(e.path), size: node.st.size }, (n) => Buffer.allocUnsafe(n)));
    }
    const actual = createHash("sha256");
    for (const part of parts) actual.update(part);
    if (actual.digest("hex") !== e.sha256) throw new PatchedRootDiffers(`${e.path} in the new root is not what the image lists (sha256 of its entry)`);
  }
  const written = new Set(plan.extract.map((e) => e.path.replace(/\/$/, "")));
  for (const path of plan.remove)
    if (!written.has(path.replace(/\/$/, "")) && lstatSync(at(path).replace(/\/$/, ""), { throwIfNoEntry: false }))
      throw new PatchedRootDiffers(`${path} is still in the new root, which the image does not have`);
}
