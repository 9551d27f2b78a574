import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { log } from "../../lib/log.ts";
import { run } from "../../lib/run.ts";
import { canonicalTar } from "../../lib/tar/canonical.ts";
import type { StoreClient } from "../../store/client/client.ts";
import { fetchImage, fetchRun, missingRuns } from "../../store/client/fetch.ts";
import type { GlanceImage } from "../../store/client/image.ts";
import type { ChunkIndex } from "../../wire/chunk-index.ts";
import type { Slot } from "../../wire/boot.ts";
import { NotTheNamedImage } from "../errors.ts";
import { unmountIfMounted } from "../mounts.ts";
import type { NodeDisk } from "./disk.ts";
import { blockDeviceSize, memAvailable } from "./host.ts";
import { applyPatch, entryReader, planPatch, type PatchPlan } from "./patch-install.ts";
import { assembledDigest, checkWritten, PatchedRootDiffers } from "./patch-verify.ts";
import { startPreload, type KernelPreload } from "./preload.ts";
import type { Report } from "./progress.ts";
import { ACTIVE_ROOT, finishNewSlot, formatNewSlot, mountSlot, NEW_ROOT } from "./slot-mounts.ts";
import { planStream, streamInto } from "./stream-install.ts";

/**
 * The three ways of writing the new root into the inactive slot, cheapest
 * first: as a patched copy of the running root when the store lists both
 * images' tar entries; as one stream from the running root and the few
 * missing chunks; by fetching into a staging tmpfs with the running root as
 * the seed. Each returns the bytes it fetched.
 *
 * Each checks what it wrote against `digest`, the image the node's metadata
 * names — never against a digest the store gives (its record, its chunk
 * index): the store may be wrong or lying. The patched root is hashed as it
 * is assembled (patch-verify.ts), the streamed one as it is written, the
 * staged one before it is extracted.
 */
const STAGING = "/run/ooo/takeover";

/** In a finally block: the error that led there matters more than a mount left behind. */
function releaseMount(dir: string) {
  try {
    unmountIfMounted(dir);
  } catch {}
}

/** The chunk indexes of the new image and of the running one, asked for once for every way of writing. */
export type Indexes = Promise<{
  next: ChunkIndex;
  running: ChunkIndex;
  current: GlanceImage;
  /** Both indexes list the entries their images' manifests, signed by a trusted key, name (patch-verify.ts entriesSigned). */
  signedEntries?: boolean;
}>;

/** What the two ways of writing from the running root need. */
export interface SlotWrite {
  client: StoreClient;
  disk: NodeDisk;
  target: Slot;
  /** The digest the metadata names: what the slot must hold. */
  digest: string;
  image: GlanceImage;
  imageBytes: number;
  /** The new image's mtime clamp (its manifest's; any other value only fails the check). */
  sourceDateEpoch?: number;
  report: Report;
  indexes: Indexes;
  preload?: KernelPreload;
}

/** The store's chunk index must at least say it is of the named image. */
function checkIndex(index: ChunkIndex, digest: string) {
  if (index.digest !== digest) throw new NotTheNamedImage("the image the store's chunk index describes", digest, index.digest);
}

/** The new root as a patched copy of the running one (patch-install.ts). Returns bytes fetched; throws if it cannot. */
export async function writePatched(o: SlotWrite): Promise<number> {
  const { next: wanted, running: have, signedEntries } = await o.indexes;
  checkIndex(wanted, o.digest);
  const plan = planPatch(wanted, have);
  const planned = plan.chunks.reduce((a, c) => a + c.size, 0);
  if (planned > Math.max(256 * 2 ** 20, memAvailable() / 4)) throw new Error(`${planned} bytes of changed files: too many to hold in memory`);
  const source = o.disk.slots[o.disk.booted];
  const dest = o.disk.slots[o.target];
  const [sourceBytes, destBytes] = await Promise.all([blockDeviceSize(source), blockDeviceSize(dest)]);
  if (destBytes < sourceBytes) throw new Error(`slot ${o.target} is smaller than the running slot: it cannot hold a copy of it`);

  await o.report("fetching", { bytes_done: 0, bytes_total: o.imageBytes });
  const want = new Set(plan.chunks.map((c) => c.id));
  const fetched = new Map<string, Uint8Array>();
  // The image is hashed from now on, beside the fetch, the copy and the patch: the
  // running root's entries as it goes, the fetched ones once they are all here.
  let allFetched!: () => void;
  const fetchedP = new Promise<void>((resolve) => (allFetched = resolve));
  const read = entryReader(plan, fetched);
  const options = { sourceDateEpoch: o.sourceDateEpoch ?? Number.MAX_SAFE_INTEGER };
  let assembled: ReturnType<typeof assembledDigest> | undefined;
  if (signedEntries) {
    // What the patch keeps, the signed entries vouch for; what it writes, checkWritten reads back.
    const bytes = await fetchAndPatch(o, { wanted, plan, want, fetched, allFetched, source, dest, options });
    log.info(`takeover: the root in slot ${o.target} is the signed entries of ${o.digest}: ${plan.extract.length} written and read back, ${plan.kept} kept`);
    return bytes;
  }
  try {
    mountSlot(source, ACTIVE_ROOT, { readOnly: true });
    assembled = assembledDigest({
      next: wanted,
      plan,
      running: ACTIVE_ROOT,
      options,
      written: async (e) => {
        await fetchedP;
        return read(e);
      },
    });
    const bytes = await fetchAndPatch(o, { wanted, plan, want, fetched, allFetched, source, dest, options });
    await o.report("verifying", { bytes_done: bytes, bytes_total: o.imageBytes, message: `the digest of the root assembled in slot ${o.target}` });
    const actual = await assembled.digest;
    if (actual !== o.digest) throw new PatchedRootDiffers(new NotTheNamedImage(`the root patched in slot ${o.target}`, o.digest, actual).message);
    return bytes;
  } finally {
    assembled?.abort();
    releaseMount(ACTIVE_ROOT);
  }
}

/** writePatched's fetch, copy and patch, while the assembled root is hashed. Returns bytes fetched. */
async function fetchAndPatch(
  o: SlotWrite,
  p: {
    wanted: ChunkIndex;
    plan: PatchPlan;
    want: Set<string>;
    fetched: Map<string, Uint8Array>;
    allFetched: () => void;
    source: string;
    dest: string;
    options: { sourceDateEpoch: number };
  },
): Promise<number> {
  const { plan, want, fetched, source, dest } = p;
  let bytes = 0;
  for (const r of missingRuns(p.wanted, (id) => want.has(id) && !fetched.has(id), 16 << 20)) {
    await fetchRun(o.client, o.image.id, r, 5, (id, data) => {
      fetched.set(id, data);
      bytes += data.length;
    });
    await o.report("fetching", { bytes_done: bytes, bytes_total: o.imageBytes });
  }
  p.allFetched();
  startPreload(o.preload);
  await o.report("writing", {
    bytes_done: bytes,
    bytes_total: o.imageBytes,
    message: `a copy of slot ${o.disk.booted}, then ${plan.extract.length} changed and ${plan.remove.length} removed entries (${plan.kept} kept)`,
  });
  // Direct I/O: the blocks go device to device by DMA, not through the
  // page cache and the (emulated, here) CPU. The running root is mounted
  // read-only, so its blocks are a consistent filesystem.
  await run("dd", [`if=${source}`, `of=${dest}`, "bs=4M", "iflag=direct", "oflag=direct", "conv=fsync", "status=none"], {
    echo: false,
    what: `copying slot ${o.disk.booted} into slot ${o.target}`,
  });
  mountSlot(dest, NEW_ROOT);
  try {
    await applyPatch({ plan, fetched, root: NEW_ROOT });
    checkWritten(plan, NEW_ROOT, p.options);
  } finally {
    finishNewSlot(o.preload);
  }
  return bytes;
}

/** The new root as one stream (stream-install.ts). Returns bytes fetched; throws if it cannot or the digest differs. */
export async function writeStreamed(o: SlotWrite): Promise<number> {
  const { next: wanted, running: have, current } = await o.indexes;
  checkIndex(wanted, o.digest);
  const currentManifest = await o.client.getManifest(current.id).catch(() => undefined);
  const plan = planStream(wanted, have);
  const missingBytes = [...plan.fetch.values()].reduce((a, b) => a + b, 0);
  if (missingBytes > Math.max(256 * 2 ** 20, memAvailable() / 4)) throw new Error(`${missingBytes} bytes are missing: too many to hold in memory`);
  await o.report("fetching", { bytes_done: 0, bytes_total: o.imageBytes });
  const fetched = new Map<string, Uint8Array>();
  let bytes = 0;
  for (const r of missingRuns(wanted, (id) => plan.fetch.has(id) && !fetched.has(id), 16 << 20)) {
    await fetchRun(o.client, o.image.id, r, 5, (id, data) => {
      fetched.set(id, data);
      bytes += data.length;
    });
    await o.report("fetching", { bytes_done: bytes, bytes_total: o.imageBytes });
  }
  startPreload(o.preload);
  await o.report("writing", { bytes_done: bytes, bytes_total: o.imageBytes, message: `${plan.reused} bytes from the running root` });
  await formatNewSlot(o.disk.slots[o.target]);
  try {
    mountSlot(o.disk.slots[o.disk.booted], ACTIVE_ROOT, { readOnly: true });
    const result = await streamInto({
      plan,
      fetched,
      oldStream: canonicalTar(ACTIVE_ROOT, { sourceDateEpoch: currentManifest?.sourceDateEpoch ?? Number.MAX_SAFE_INTEGER }),
      target: NEW_ROOT,
    });
    if (result.digest !== o.digest) throw new NotTheNamedImage(`the root streamed into slot ${o.target}`, o.digest, result.digest);
  } finally {
    releaseMount(ACTIVE_ROOT);
    finishNewSlot(o.preload);
  }
  return bytes;
}

/** Fetch into a staging tmpfs (running root as the seed), verify, then extract. Returns bytes fetched. */
export async function writeStaged(o: {
  client: StoreClient;
  disk: NodeDisk;
  target: Slot;
  digest: string;
  image: GlanceImage;
  imageBytes: number;
  sourceDateEpoch?: number;
  report: Report;
  fail: (message: string, hint?: string) => Promise<never>;
  preload?: KernelPreload;
}): Promise<number> {
  if (memAvailable() < o.imageBytes + 64 * 2 ** 20)
    return o.fail(`not enough memory to stage the new root: it needs ${(o.imageBytes / 2 ** 20).toFixed(0)} MiB, ${(memAvailable() / 2 ** 20).toFixed(0)} MiB are available`);
  mkdirSync(STAGING, { recursive: true });
  unmountIfMounted(STAGING);
  await run("mount", ["-t", "tmpfs", "-o", `size=${o.imageBytes + 32 * 2 ** 20},mode=0700`, "ooo-takeover", STAGING], { echo: false, what: "mounting the staging tmpfs" });
  const staged = join(STAGING, "root.tar");
  try {
    mountSlot(o.disk.slots[o.disk.booted], ACTIVE_ROOT, { readOnly: true });
    await o.report("fetching", { bytes_done: 0, bytes_total: o.imageBytes });
    const result = await fetchImage({
      client: o.client,
      image: o.image,
      out: staged,
      digest: o.digest,
      seeds: [ACTIVE_ROOT],
      sourceDateEpoch: o.sourceDateEpoch,
      onProgress: (r) => void o.report("fetching", { bytes_done: r.fetched, bytes_total: o.imageBytes }),
    }).catch((e: Error) => o.fail(`fetching ${o.digest} failed: ${e.message}`));
    unmountIfMounted(ACTIVE_ROOT);
    startPreload(o.preload);
    await o.report("writing", { bytes_done: result.fetched, bytes_total: o.imageBytes });
    await formatNewSlot(o.disk.slots[o.target]);
    try {
      await run("tar", ["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", staged, "-C", NEW_ROOT], { what: `writing the new root into slot ${o.target}` });
    } finally {
      finishNewSlot(o.preload);
    }
    return result.fetched;
  } finally {
    releaseMount(ACTIVE_ROOT);
    rmSync(staged, { force: true });
    releaseMount(STAGING);
  }
}
