import { log } from "../../lib/log.ts";
import { StoreClient } from "../../store/client/client.ts";
import type { GlanceImage } from "../../store/client/image.ts";
import { resolveImage } from "../../store/client/resolve.ts";
import { setOrder, setSlot, type Slot } from "../../wire/boot.ts";
import { TakeoverFailed, UntrustedImage } from "../errors.ts";
import { verifyNodeImage } from "../verify-image.ts";
import { withBootPartition } from "./boot-partition.ts";
import type { NodeDisk } from "./disk.ts";
import { blockDeviceSize } from "./host.ts";
import { unloadKexecKernel } from "./kexec.ts";
import { entriesSigned } from "./patch-verify.ts";
import { preloadRunningKernel, type KernelPreload } from "./preload.ts";
import { progressReporter, type Report } from "./progress.ts";
import { writeUpgradeReport } from "./reports.ts";
import type { Installed } from "./restart.ts";
import type { TakeoverContext } from "./takeover.ts";
import { writePatched, writeStaged, writeStreamed, type Indexes } from "./write-slot.ts";

/**
 * Install the wanted image into the inactive slot `target` and arm it for
 * one trial boot: the slot stops being bootable before a byte of it
 * changes, is written (write-slot.ts), and only then becomes first in the
 * boot order, on trial. A power cut anywhere before that leaves the old
 * root booting, and the next run starts over.
 *
 * The digest the metadata names is the only root of trust: the store
 * finds the image and its data, but the slot is armed only once what was
 * written is that digest (write-slot.ts checks it). Data that is not, or
 * that would write outside the slot, ends the takeover at once
 * (UntrustedImage): another way of writing would fetch the same data.
 */
export async function installInto(
  ctx: TakeoverContext,
  disk: NodeDisk,
  target: Slot,
  wanted: { digest: string; attempt: number },
  from: string | undefined,
): Promise<Installed> {
  const started = performance.now();
  const report = progressReporter(ctx, wanted.digest, started);
  const store = ctx.metadata.ooo.store;
  const fail = async (message: string, hint?: string): Promise<never> => {
    await report("failed", { message });
    writeUpgradeReport({ from, to: wanted.digest, result: "failed", reason: message });
    throw new TakeoverFailed(message, { hint });
  };
  if (!store) return fail("the metadata names a new image but no store to fetch it from (ooo.store)");

  await report("checking");
  const client = new StoreClient({ url: store.url, token: store.token, serverName: store.server_name });
  // Every request a round trip from an emulated CPU: ask what can be asked at once.
  const currentP = from ? resolveImage(client, from) : Promise.reject(new Error("the running image is unknown"));
  currentP.catch(() => {});
  const image = await resolveImage(client, wanted.digest).catch((e: Error) => fail(`image ${wanted.digest} is not in the store: ${e.message}`));
  if (image.ooo_digest !== undefined && image.ooo_digest !== wanted.digest)
    return fail(`the store answered for ${wanted.digest} with image ${image.id}, which it says is ${image.ooo_digest}: not the image this node's metadata names`);
  // With trusted keys on its config drive, the node takes only an image whose manifest one of them signed.
  const trusted = await verifyNodeImage(client, image, wanted.digest).catch((e: Error & { hint?: string }) => fail(e.message, e.hint));
  const indexes: Indexes = currentP.then(async (current) => {
    const [next, running, runningCheck] = await Promise.all([
      client.getChunkIndex(image.id),
      client.getChunkIndex(current.id),
      // The running image signed too, its entries can stand for its root (patch-verify.ts); unsigned, the root is hashed.
      trusted.signed && from ? verifyNodeImage(client, current, from).catch(() => undefined) : undefined,
    ]);
    const signedEntries =
      !!trusted.signed &&
      !!runningCheck?.signed &&
      entriesSigned(next, trusted.signed.manifest, `${image.name ?? image.id} ${wanted.digest}`) &&
      entriesSigned(running, runningCheck.signed.manifest, `${current.name ?? current.id} ${from}`);
    return { next, running, current, signedEntries };
  });
  indexes.catch(() => {});
  const manifest = trusted.signed?.manifest ?? (await client.getManifest(image.id).catch(() => undefined));
  const imageBytes = image.size ?? manifest?.sizes.rootBytes ?? 0;
  const slotBytes = await blockDeviceSize(disk.slots[target]);
  // ext4's own metadata and journal take about a tenth; the tree must fit the rest.
  if (imageBytes > slotBytes * 0.85)
    return fail(`the new root (${(imageBytes / 2 ** 20).toFixed(0)} MiB) does not fit root slot ${target} (${(slotBytes / 2 ** 20).toFixed(0)} MiB)`);

  // 1. The target slot stops being bootable before a single byte of it changes.
  await withBootPartition(disk.boot, (boot) => {
    const env = boot.readEnv();
    setSlot(env, target, { ok: false, try: false, digest: "" });
    setOrder(env, disk.booted);
    boot.writeEnv(env);
    boot.writeRecord(target, { digest: wanted.digest, attempt: wanted.attempt, from, status: "writing", unexplained: 0, startedAt: Date.now() / 1000, imageBytes });
  });

  // A new image seldom brings a new kernel: load the running one for kexec
  // on a thread while the slot is written (finishNewSlot checks that the
  // new root holds the same files).
  const preload = ctx.reboot ? preloadRunningKernel(disk, target) : undefined;
  try {
    return await writeAndArm({ disk, target, wanted, from, image, imageBytes, report, indexes, client, manifest, preload, fail }).catch((e: unknown) => {
      if (e instanceof TakeoverFailed || !(e instanceof Error)) throw e;
      return fail(e instanceof UntrustedImage ? e.message : `writing slot ${target} failed: ${e.message}`, e instanceof UntrustedImage ? e.hint : undefined);
    });
  } catch (e) {
    if (preload?.result) {
      await preload.result;
      unloadKexecKernel();
    }
    throw e;
  }
}

async function writeAndArm(o: {
  disk: NodeDisk;
  target: Slot;
  wanted: { digest: string; attempt: number };
  from: string | undefined;
  image: GlanceImage;
  imageBytes: number;
  report: Report;
  indexes: Indexes;
  client: StoreClient;
  manifest: { sourceDateEpoch?: number } | undefined;
  preload: KernelPreload | undefined;
  fail: (message: string, hint?: string) => Promise<never>;
}): Promise<Installed> {
  const { disk, target, wanted, from, image, imageBytes, report, indexes, client, manifest, preload, fail } = o;
  // 2. Write it, the cheapest way the store allows (write-slot.ts).
  let fetched = 0;
  let how: "patched" | "streamed" | "staged" = "staged";
  const notes: string[] = from ? [] : ["the running image is unknown"];
  const attempt = async (method: "patched" | "streamed", write: () => Promise<number>) => {
    if (!from) return undefined;
    return write().catch((e: Error) => {
      if (e instanceof UntrustedImage) throw e;
      notes.push(`could not install ${method}: ${e.message}`);
      log.warn(`takeover: ${notes.at(-1)}; trying the next way`);
      return undefined;
    });
  };
  const sourceDateEpoch = manifest?.sourceDateEpoch;
  const args = { client, disk, target, digest: wanted.digest, image, imageBytes, sourceDateEpoch, report, indexes, preload };
  const patched = await attempt("patched", () => writePatched(args));
  const streamed = patched === undefined ? await attempt("streamed", () => writeStreamed(args)) : undefined;
  if (patched !== undefined) {
    fetched = patched;
    how = "patched";
  } else if (streamed !== undefined) {
    fetched = streamed;
    how = "streamed";
  } else fetched = await writeStaged({ ...args, fail });
  const note = notes.length ? notes.join("; ") : undefined;
  const verified = how === "patched" && (await indexes).signedEntries ? "signed-entries" : "digest";
  log.info(`takeover: slot ${target} written (${how}), ${fetched} bytes fetched of ${imageBytes}`);

  // 4. Arm the slot for one trial boot, first in the order.
  await report("switching", { bytes_done: fetched, bytes_total: imageBytes });
  await withBootPartition(disk.boot, (boot) => {
    const env = boot.readEnv();
    setSlot(env, target, { ok: false, try: true, digest: wanted.digest });
    setOrder(env, target);
    boot.writeEnv(env);
    const rec = boot.readRecord(target)!;
    boot.writeRecord(target, { ...rec, status: "trial", bytesFetched: fetched, method: how, verified, note });
  });
  return {
    preload,
    // After the try is used up (restartInto): a power cut on the host's word "rebooting" then lands where one in the restart would.
    announce: (how) => report("rebooting", { bytes_done: fetched, bytes_total: imageBytes, message: `slot ${target} armed for a trial boot; ${how === "kexec" ? "starting it with kexec" : "rebooting into it"}` }),
  };
}

