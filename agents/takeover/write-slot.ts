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
import { unmountIfMounted } from "../mounts.ts";
import type { NodeDisk } from "./disk.ts";
import { blockDeviceSize, memAvailable } from "./host.ts";
import { applyPatch, planPatch } from "./patch-install.ts";
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
 */
const STAGING = "/run/ooo/takeover";

/** In a finally block: the error that led there matters more than a mount left behind. */
function releaseMount(dir: string) {
  try {
    unmountIfMounted(dir);
  } catch {}
}

/** The chunk indexes of the new image and of the running one, asked for once for every way of writing. */
export type Indexes = Promise<{ next: ChunkIndex; running: ChunkIndex; current: GlanceImage }>;

/** What the two ways of writing from the running root need. */
export interface SlotWrite {
  client: StoreClient;
  disk: NodeDisk;
  target: Slot;
  image: GlanceImage;
  imageBytes: number;
  report: Report;
  indexes: Indexes;
  preload?: KernelPreload;
}

/** The new root as a patched copy of the running one (patch-install.ts). Returns bytes fetched; throws if it cannot. */
export async function writePatched(o: SlotWrite): Promise<number> {
  const { next: wanted, running: have } = await o.indexes;
  if (o.image.ooo_digest && wanted.digest !== o.image.ooo_digest) throw new Error(`the chunk index is of ${wanted.digest}, not ${o.image.ooo_digest}`);
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
  let bytes = 0;
  for (const r of missingRuns(wanted, (id) => want.has(id) && !fetched.has(id), 16 << 20)) {
    await fetchRun(o.client, o.image.id, r, 5, (id, data) => {
      fetched.set(id, data);
      bytes += data.length;
    });
    await o.report("fetching", { bytes_done: bytes, bytes_total: o.imageBytes });
  }
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
  } finally {
    finishNewSlot(o.preload);
  }
  return bytes;
}

/** The new root as one stream (stream-install.ts). Returns bytes fetched; throws if it cannot or the digest differs. */
export async function writeStreamed(o: SlotWrite): Promise<number> {
  const { next: wanted, running: have, current } = await o.indexes;
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
    if (result.digest !== wanted.digest) throw new Error(`the streamed root is ${result.digest}, not ${wanted.digest}`);
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
      seeds: [ACTIVE_ROOT],
      sourceDateEpoch: o.sourceDateEpoch,
      onProgress: (r) => void o.report("fetching", { bytes_done: r.fetched, bytes_total: o.imageBytes }),
    }).catch((e: Error) => o.fail(`fetching ${o.image.ooo_digest ?? o.image.id} failed: ${e.message}`));
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
