import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { log } from "../../lib/log.ts";
import { capture, run } from "../../lib/run.ts";
import { StoreClient } from "../../store/client/client.ts";
import { fetchImage, fetchRun, missingRuns } from "../../store/client/fetch.ts";
import type { GlanceImage } from "../../store/client/image.ts";
import type { ChunkIndex } from "../../wire/chunk-index.ts";
import { canonicalTar } from "../../lib/tar/canonical.ts";
import { planStream, streamInto } from "./stream-install.ts";
import { applyPatch, planPatch } from "./patch-install.ts";
import { resolveImage } from "../../store/client/resolve.ts";
import type { NodeMetadata } from "../../wire/metadata.ts";
import { Progress, progressUrl, type Progress as ProgressT } from "../../wire/progress.ts";
import { BootPartition } from "./boot-partition.ts";
import { grubChoice, other, setOrder, setSlot, slotState, type BootEnv, type Slot } from "./bootenv.ts";
import { insideRoot, kexecCmdline, loadKexecKernel, loadKexecKernelInBackground, sameContent, unloadKexecKernel, type KexecResult } from "./kexec.ts";
import { checkBooted } from "./check.ts";
import { decide } from "./decide.ts";
import { findNodeDisk, type NodeDisk } from "./disk.ts";
import { isMountPoint, mountFs, syncFilesystemOf, unmount } from "../mounts.ts";
import { TakeoverFailed } from "../errors.ts";
import { writeUpgradeReport } from "./reports.ts";

/**
 * takeovernode, done on the node itself as the original design wanted, and
 * safely: the new root goes into the *inactive* slot, fetched from the store
 * as the chunks the node lacks (its running root is the seed), verified
 * against the image digest, written as a fresh filesystem; only then does
 * the boot environment arm the slot for one trial boot, and the node
 * restarts into it (kexec, else a reboot). The state partition is never
 * touched. A power cut before the
 * switch leaves the old root booting and the next run starts over; after
 * it, the trial boot either gets marked good (mark-good.ts) or the
 * bootloader falls back to the old root.
 */

const ACTIVE_ROOT = "/run/ooo/active-root";
const NEW_ROOT = "/run/ooo/new-root";
const STAGING = "/run/ooo/takeover";

export interface TakeoverContext {
  metadata: NodeMetadata;
  token?: string;
  /** Reboot when the new root is ready (false: leave it armed, for tests and operators). */
  reboot: boolean;
  /**
   * Run before the configuration (pre-configure.d): a root about to be
   * replaced need not be configured first, but one not yet marked good
   * must be, before its only fallback is overwritten: "deferred".
   */
  beforeConfigure?: boolean;
  /** The caller has asked checkBooted (check.ts) already, and it left the decision to us: not again. */
  checked?: boolean;
}

/** Report progress to the metadata service; never fails the takeover. */
function progressReporter(ctx: TakeoverContext, to: string, started: number) {
  const url = progressUrl(ctx.metadata.ooo.signal_url);
  return async (phase: ProgressT["phase"], extra: Partial<ProgressT> = {}) => {
    const body = Progress.parse({ version: 1, node: ctx.metadata.ooo.node, to, phase, at: (performance.now() - started) / 1000, ...extra });
    log.info(`takeover: ${phase}${extra.bytes_done !== undefined ? ` ${extra.bytes_done}/${extra.bytes_total ?? "?"} bytes` : ""}${extra.message ? `: ${extra.message}` : ""}`);
    try {
      await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...(ctx.token ? { authorization: `Bearer ${ctx.token}` } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
    } catch {}
  };
}

async function ensureUnmounted(path: string) {
  if (isMountPoint(path)) unmount(path);
}

function memAvailable(): number {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync("/proc/meminfo", "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** From sysfs, not `blockdev`: under emulation every process started costs a tenth of a second or more. */
async function blockDeviceSize(dev: string): Promise<number> {
  const sectors = Number(readFileSync(`/sys/class/block/${basename(realpathSync(dev))}/size`, "utf8").trim());
  if (Number.isFinite(sectors) && sectors > 0) return sectors * 512;
  return Number((await capture("blockdev", ["--getsize64", dev])).trim());
}

/**
 * Check the metadata's image against the running root and act. Returns the
 * action taken. "takeover" and "rearm" end in a reboot (when asked to).
 */
export async function takeover(ctx: TakeoverContext): Promise<string> {
  const wanted = { digest: ctx.metadata.ooo.image.digest, attempt: ctx.metadata.ooo.image.attempt ?? 0 };
  const early = ctx.checked ? undefined : await checkBooted(wanted.digest, { beforeConfigure: ctx.beforeConfigure });
  if (early) return early;
  const disk = findNodeDisk();
  const boot = await BootPartition.open(disk.boot);
  let decision;
  let running: string | undefined;
  try {
    const env = boot.readEnv();
    const target = other(disk.booted);
    running = slotState(env, disk.booted).digest;
    decision = decide({ booted: disk.booted, env, record: boot.readRecord(target), wanted });
    log.info(`takeover: slot ${disk.booted} runs ${running ?? "an unknown image"}; wanted ${wanted.digest}: ${decision.action}`);
    if (decision.action === "none") return "none";
    const record = boot.readRecord(target)!;
    if (decision.action === "rolled-back") {
      if (decision.unexplained !== undefined) boot.writeRecord(target, { ...record, status: "failed", unexplained: decision.unexplained, reason: decision.reason });
      writeUpgradeReport({ from: running, to: wanted.digest, result: "rolled-back", reason: decision.reason });
      return "rolled-back";
    }
    if (decision.action === "switch") {
      setOrder(env, target);
      boot.writeEnv(env);
      writeUpgradeReport({ from: running, to: wanted.digest, result: "upgraded", bytes_fetched: 0, method: "switch" });
      log.info(`takeover: slot ${target} still holds ${wanted.digest} (known good); switching to it`);
    }
    if (decision.action === "rearm") {
      setSlot(env, target, { ok: false, try: true });
      setOrder(env, target);
      boot.writeEnv(env);
      boot.writeRecord(target, { ...record, unexplained: decision.unexplained });
      log.info(`takeover: slot ${target} already holds ${wanted.digest}; trying it again`);
    }
  } finally {
    await boot.close();
  }
  if (decision.action === "rearm" || decision.action === "switch") {
    const report = progressReporter(ctx, wanted.digest, performance.now());
    const message = decision.action === "rearm" ? `slot ${decision.target} armed for a trial boot again` : `back to slot ${decision.target}`;
    if (ctx.reboot) await restartInto(disk, decision.target, { announce: (how) => report("rebooting", { message: `${message}; ${how === "kexec" ? "starting it with kexec" : "rebooting into it"}` }) });
    return decision.action;
  }
  const installed = await installInto(ctx, disk, decision.target, wanted, running);
  if (ctx.reboot) await restartInto(disk, decision.target, installed);
  return "takeover";
}

async function installInto(
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
  const client = new StoreClient({ url: store.url, token: store.token });
  // Every request a round trip from an emulated CPU: ask what can be asked at once.
  const currentP = from ? resolveImage(client, from) : Promise.reject(new Error("the running image is unknown"));
  currentP.catch(() => {});
  const image = await resolveImage(client, wanted.digest).catch((e: Error) => fail(`image ${wanted.digest} is not in the store: ${e.message}`));
  const indexes: Indexes = currentP.then(async (current) => {
    const [next, running] = await Promise.all([client.getChunkIndex(image.id), client.getChunkIndex(current.id)]);
    return { next, running, current };
  });
  indexes.catch(() => {});
  const manifest = await client.getManifest(image.id).catch(() => undefined);
  const imageBytes = image.size ?? manifest?.sizes.rootBytes ?? 0;
  const slotBytes = await blockDeviceSize(disk.slots[target]);
  // ext4's own metadata and journal take about a tenth; the tree must fit the rest.
  if (imageBytes > slotBytes * 0.85)
    return fail(`the new root (${(imageBytes / 2 ** 20).toFixed(0)} MiB) does not fit root slot ${target} (${(slotBytes / 2 ** 20).toFixed(0)} MiB)`);

  // 1. The target slot stops being bootable before a single byte of it changes.
  const boot = await BootPartition.open(disk.boot);
  try {
    const env = boot.readEnv();
    setSlot(env, target, { ok: false, try: false, digest: "" });
    setOrder(env, disk.booted);
    boot.writeEnv(env);
    boot.writeRecord(target, { digest: wanted.digest, attempt: wanted.attempt, from, status: "writing", unexplained: 0, startedAt: Date.now() / 1000, imageBytes });
  } finally {
    await boot.close();
  }

  // A new image seldom brings a new kernel: load the running one for kexec
  // on a thread while the slot is written (finishNewSlot checks that the
  // new root holds the same files).
  const preload = ctx.reboot ? preloadRunningKernel(disk, target) : undefined;
  try {
    return await writeAndArm({ disk, target, wanted, from, image, imageBytes, report, indexes, client, manifest, preload, fail });
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
  // 2. Write it, the cheapest way the store allows: as a patched copy of the
  //    running root when it lists both images' tar entries; else as one
  //    stream from the running root and the few missing chunks; else by
  //    fetching into a staging tmpfs with the running root as the seed.
  let fetched = 0;
  let how: "patched" | "streamed" | "staged" = "staged";
  const notes: string[] = from ? [] : ["the running image is unknown"];
  const attempt = async (method: "patched" | "streamed", write: () => Promise<number>) => {
    if (!from) return undefined;
    return write().catch((e: Error) => {
      notes.push(`could not install ${method}: ${e.message}`);
      log.warn(`takeover: ${notes.at(-1)}; trying the next way`);
      return undefined;
    });
  };
  const args = { client, disk, target, image, imageBytes, report, indexes, preload };
  const patched = await attempt("patched", () => writePatched(args));
  const streamed = patched === undefined ? await attempt("streamed", () => writeStreamed(args)) : undefined;
  if (patched !== undefined) {
    fetched = patched;
    how = "patched";
  } else if (streamed !== undefined) {
    fetched = streamed;
    how = "streamed";
  } else fetched = await writeStaged({ client, disk, target, image, imageBytes, sourceDateEpoch: manifest?.sourceDateEpoch, report, fail, preload });
  const note = notes.length ? notes.join("; ") : undefined;
  log.info(`takeover: slot ${target} written (${how}), ${fetched} bytes fetched of ${imageBytes}`);

  // 4. Arm the slot for one trial boot, first in the order.
  await report("switching", { bytes_done: fetched, bytes_total: imageBytes });
  const boot2 = await BootPartition.open(disk.boot);
  try {
    const env = boot2.readEnv();
    setSlot(env, target, { ok: false, try: true, digest: wanted.digest });
    setOrder(env, target);
    boot2.writeEnv(env);
    const rec = boot2.readRecord(target)!;
    boot2.writeRecord(target, { ...rec, status: "trial", bytesFetched: fetched, method: how, note });
  } finally {
    await boot2.close();
  }
  return {
    preload,
    // After the try is used up (restartInto): a power cut on the host's word "rebooting" then lands where one in the restart would.
    announce: (how) => report("rebooting", { bytes_done: fetched, bytes_total: imageBytes, message: `slot ${target} armed for a trial boot; ${how === "kexec" ? "starting it with kexec" : "rebooting into it"}` }),
  };
}

/** A slot written and armed: the kernel being loaded for it, and how to say the restart begins. */
interface Installed {
  preload?: KernelPreload;
  announce: (how: "kexec" | "reboot") => Promise<void>;
}

/**
 * Start the slot the boot environment now picks. kexec when its kernel
 * loads: the same kernel and command line GRUB would boot, without the
 * firmware and the bootloader (seconds under emulation, tens of seconds on
 * servers with long POSTs). The try is used up before, as GRUB does it, so
 * a power cut or a hang from here on lands in the old root just as after
 * a reboot. Anything that stops kexec ends in the plain reboot.
 */
async function restartInto(disk: NodeDisk, target: Slot, installed?: Installed): Promise<never> {
  const kexec = await prepareKexec(disk, target, installed?.preload).catch((e: Error) => ({ loaded: false as const, reason: e.message }));
  await installed?.announce(kexec.loaded ? "kexec" : "reboot");
  if (kexec.loaded) {
    log.info(`takeover: starting slot ${target} with kexec`);
    // On the console where GRUB would say "ooo: booting slot …": operators (and tests) see which root comes next.
    writeKmsg(`ooo: kexec into slot ${target} trial=${kexec.trial ? 1 : 0}`);
    // --no-block: systemctl returns once the job is queued, before the shutdown stops this service
    // (and kills systemctl with it, which looked like a failure: the kernel was unloaded under systemd's feet).
    const started = await run("systemctl", ["--no-block", "kexec"], { echo: false, what: "kexec" }).then(
      () => true,
      (e: Error) => shuttingDown() || (log.warn(`takeover: ${e.message}; rebooting instead`), false),
    );
    if (started) for (;;) await Bun.sleep(60_000);
    unloadKexecKernel();
    await noteReboot(disk, target, kexec.before).catch((e: Error) => log.warn(`takeover: ${e.message}`));
  } else {
    log.info(`takeover: rebooting into slot ${target} (no kexec: ${kexec.reason})`);
    await noteReboot(disk, target).catch((e: Error) => log.warn(`takeover: ${e.message}`));
  }
  await run("systemctl", ["reboot"], { echo: false, what: "rebooting" }).catch(() => run("reboot", ["-f"], { echo: false }));
  // systemd stops us during shutdown; never report success before that.
  for (;;) await Bun.sleep(60_000);
}

/** Load the kernel GRUB would boot next (it must be `target`'s), unless it is loaded already, and use up its try. */
async function prepareKexec(disk: NodeDisk, target: Slot, preload?: KernelPreload): Promise<{ loaded: true; before: BootEnv; trial: boolean } | { loaded: false; reason: string }> {
  const boot = await BootPartition.open(disk.boot);
  try {
    const env = boot.readEnv();
    const before = new Map(env);
    const choice = grubChoice(env);
    if (choice?.slot !== target) return { loaded: false, reason: `the boot environment picks slot ${choice?.slot ?? "none"}, not ${target}` };
    const extra = (env.get("EXTRA_CMDLINE") ?? "").split(/\s+/).filter(Boolean);
    const running = readFileSync("/proc/cmdline", "utf8");
    if (extra.some((w) => !running.split(/\s+/).includes(w))) return { loaded: false, reason: "EXTRA_CMDLINE changed since this boot" };
    let loaded: KexecResult;
    if (preload?.result && preload.inNewRoot && preload.slot === target && choice.trial) loaded = await preload.result;
    else {
      // One load at a time (the kernel answers EBUSY to a second): the preload ends first.
      await preload?.result;
      const cmdline = kexecCmdline(running, { partuuid: partuuidOf(disk.slots[target]), slot: target, trial: choice.trial });
      mkdirSync(NEW_ROOT, { recursive: true });
      await ensureUnmounted(NEW_ROOT);
      mountFs(disk.slots[target], NEW_ROOT, "ext4", { readOnly: true });
      try {
        loaded = loadKexecKernel({ kernel: insideRoot(NEW_ROOT, "vmlinuz"), initrd: insideRoot(NEW_ROOT, "initrd.img"), cmdline });
      } finally {
        await ensureUnmounted(NEW_ROOT);
      }
    }
    if (!loaded.loaded) return loaded;
    const record = boot.readRecord(target);
    if (record?.status === "trial") boot.writeRecord(target, { ...record, restart: "kexec" });
    boot.writeEnv(env);
    return { loaded: true, before, trial: choice.trial };
  } finally {
    await boot.close();
  }
}

/** The slot's record says it was started by a reboot; `env` puts back the block as it was before a kexec that did not happen. */
async function noteReboot(disk: NodeDisk, target: Slot, env?: BootEnv) {
  const boot = await BootPartition.open(disk.boot);
  try {
    if (env) boot.writeEnv(env);
    const record = boot.readRecord(target);
    if (record?.status === "trial") boot.writeRecord(target, { ...record, restart: "reboot" });
  } finally {
    await boot.close();
  }
}

/** Whether systemd is shutting down (then a kexec or a reboot is under way: nothing to fall back to). */
function shuttingDown(): boolean {
  const r = Bun.spawnSync(["systemctl", "is-system-running"], { stdout: "pipe", stderr: "ignore" });
  return r.stdout.toString().trim() === "stopping";
}

/** A line in the kernel log, at a level the console shows even with `quiet`. */
function writeKmsg(line: string) {
  try {
    writeFileSync("/dev/kmsg", `<2>${line}\n`);
  } catch {}
}

/** The running root's kernel and initrd, to be loaded for kexec into `slot` on trial. */
interface KernelPreload {
  kernel: string;
  initrd: string;
  cmdline: string;
  slot: Slot;
  /** Started by startPreload. */
  result?: Promise<KexecResult>;
  /** Set by finishNewSlot: whether the new root boots these very files. */
  inNewRoot?: boolean;
}

function preloadRunningKernel(disk: NodeDisk, slot: Slot): KernelPreload | undefined {
  try {
    const kernel = insideRoot("/", "vmlinuz");
    const initrd = insideRoot("/", "initrd.img");
    const cmdline = kexecCmdline(readFileSync("/proc/cmdline", "utf8"), { partuuid: partuuidOf(disk.slots[slot]), slot, trial: true });
    return { kernel, initrd, cmdline, slot };
  } catch (e) {
    log.warn(`takeover: not loading the running kernel for kexec ahead: ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * When the slot's writing begins: the kernel's hashing of what it loads
 * takes a vCPU for seconds under emulation, and the fetch before needs
 * both (the writing is mostly the disk's).
 */
function startPreload(preload: KernelPreload | undefined) {
  if (preload) preload.result ??= loadKexecKernelInBackground({ kernel: preload.kernel, initrd: preload.initrd, cmdline: preload.cmdline });
}

/** The partition UUID of `device`, as /dev/disk/by-partuuid names it (root=PARTUUID=…). */
function partuuidOf(device: string): string {
  const dir = "/dev/disk/by-partuuid";
  const want = realpathSync(device);
  for (const name of readdirSync(dir)) if (realpathSync(join(dir, name)) === want) return name;
  throw new Error(`${device} has no partition UUID in ${dir}`);
}

type Report = ReturnType<typeof progressReporter>;
/** The chunk indexes of the new image and of the running one, asked for once for every way of writing. */
type Indexes = Promise<{ next: ChunkIndex; running: ChunkIndex; current: GlanceImage }>;

async function mountNewSlot(device: string, label: string) {
  await run("mkfs.ext4", ["-q", "-F", "-L", label, "-m", "0", device], { echo: false, what: `making the filesystem of ${device}` });
  mkdirSync(NEW_ROOT, { recursive: true });
  await ensureUnmounted(NEW_ROOT);
  mountFs(device, NEW_ROOT, "ext4");
}

async function finishNewSlot(preload: KernelPreload | undefined) {
  try {
    if (!existsSync(join(NEW_ROOT, "vmlinuz")) || !statSync(join(NEW_ROOT, "vmlinuz")).size)
      throw new TakeoverFailed("the new root has no /vmlinuz: it cannot boot from a slot");
    if (preload)
      preload.inNewRoot = sameContent(preload.kernel, insideRoot(NEW_ROOT, "vmlinuz")) && sameContent(preload.initrd, insideRoot(NEW_ROOT, "initrd.img"));
    syncFilesystemOf(join(NEW_ROOT, "vmlinuz"));
  } finally {
    await ensureUnmounted(NEW_ROOT);
  }
}

/** What the two ways of writing from the running root need. */
interface SlotWrite {
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
async function writePatched(o: SlotWrite): Promise<number> {
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
  mkdirSync(NEW_ROOT, { recursive: true });
  await ensureUnmounted(NEW_ROOT);
  mountFs(dest, NEW_ROOT, "ext4");
  try {
    await applyPatch({ plan, fetched, root: NEW_ROOT });
  } finally {
    await finishNewSlot(o.preload);
  }
  return bytes;
}

/** The new root as one stream (stream-install.ts). Returns bytes fetched; throws if it cannot or the digest differs. */
async function writeStreamed(o: SlotWrite): Promise<number> {
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
  mkdirSync(ACTIVE_ROOT, { recursive: true });
  await ensureUnmounted(ACTIVE_ROOT);
  await mountNewSlot(o.disk.slots[o.target], "ooo-root");
  try {
    mountFs(o.disk.slots[o.disk.booted], ACTIVE_ROOT, "ext4", { readOnly: true });
    const result = await streamInto({
      plan,
      fetched,
      oldStream: canonicalTar(ACTIVE_ROOT, { sourceDateEpoch: currentManifest?.sourceDateEpoch ?? Number.MAX_SAFE_INTEGER }),
      target: NEW_ROOT,
    });
    if (result.digest !== wanted.digest) throw new Error(`the streamed root is ${result.digest}, not ${wanted.digest}`);
  } finally {
    await ensureUnmounted(ACTIVE_ROOT).catch(() => {});
    await finishNewSlot(o.preload);
  }
  return bytes;
}

/** Fetch into a staging tmpfs (running root as the seed), verify, then extract. Returns bytes fetched. */
async function writeStaged(o: {
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
  await ensureUnmounted(STAGING);
  await run("mount", ["-t", "tmpfs", "-o", `size=${o.imageBytes + 32 * 2 ** 20},mode=0700`, "ooo-takeover", STAGING], { echo: false, what: "mounting the staging tmpfs" });
  const staged = join(STAGING, "root.tar");
  mkdirSync(ACTIVE_ROOT, { recursive: true });
  await ensureUnmounted(ACTIVE_ROOT);
  try {
    mountFs(o.disk.slots[o.disk.booted], ACTIVE_ROOT, "ext4", { readOnly: true });
    await o.report("fetching", { bytes_done: 0, bytes_total: o.imageBytes });
    const result = await fetchImage({
      client: o.client,
      image: o.image,
      out: staged,
      seeds: [ACTIVE_ROOT],
      sourceDateEpoch: o.sourceDateEpoch,
      onProgress: (r) => void o.report("fetching", { bytes_done: r.fetched, bytes_total: o.imageBytes }),
    }).catch((e: Error) => o.fail(`fetching ${o.image.ooo_digest ?? o.image.id} failed: ${e.message}`));
    await ensureUnmounted(ACTIVE_ROOT);
    startPreload(o.preload);
    await o.report("writing", { bytes_done: result.fetched, bytes_total: o.imageBytes });
    await mountNewSlot(o.disk.slots[o.target], "ooo-root");
    try {
      await run("tar", ["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", staged, "-C", NEW_ROOT], { what: `writing the new root into slot ${o.target}` });
    } finally {
      await finishNewSlot(o.preload);
    }
    return result.fetched;
  } finally {
    await ensureUnmounted(ACTIVE_ROOT).catch(() => {});
    rmSync(staged, { force: true });
    await ensureUnmounted(STAGING).catch(() => {});
  }
}
