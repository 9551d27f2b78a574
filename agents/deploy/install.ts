import { closeSync, constants, fstatSync, openSync, writeSync, fsyncSync } from "node:fs";
import { createHash } from "node:crypto";
import { growStatePartition, type GptPartition } from "../../lib/gpt-grow.ts";
import { log } from "../../lib/log.ts";
import { CONFIG_DRIVE_LABEL } from "../../wire/metadata.ts";
import type { DeployInstructions, Disk, RamdiskPhase } from "../../wire/deploy.ts";
import { chooseRootDisk, CONFIG_DRIVE_PARTITION_BYTES, deployBytes } from "../../wire/root-device.ts";
import { DeployStepFailed, ImageMismatch } from "../errors.ts";
import type { DeployClient } from "./client.ts";
import type { Target } from "./held-disk.ts";
import { ImageWriter } from "./image-writer.ts";
import { MapWriter, type Get } from "./map-writer.ts";
import { disks } from "./inventory.ts";
import { blockDeviceSize, rereadPartitions, zeroOutBlock, zeroOutFile } from "./syscalls.ts";

/**
 * The deploy command: pick the disk, wipe what was on it, stream the golden
 * disk onto it (bootable only once its sha256 matched), grow the state
 * partition, write the config drive. What starts the installed root comes
 * after (cli.ts: kexec, or the deployer's boot from disk).
 */
const MiB = 2 ** 20;
/** Progress reports while writing, at most this often. */
const PROGRESS_EVERY_MS = 2000;
/** A download that sends nothing for this long has stalled. */
const STALL_MS = 60_000;

export interface Installed {
  disk: Disk;
  partitions: GptPartition[];
}

export type Phase = (phase: RamdiskPhase, extra?: { bytes_done?: number; bytes_total?: number; message?: string }) => Promise<void>;

/** `chosen` hears of the disk as soon as it is picked (a failure after that names it). */
export async function install(client: DeployClient, d: DeployInstructions, phase: Phase, chosen: (disk: Disk) => void = () => {}): Promise<Installed> {
  await phase("selecting-disk");
  const disk = await step("selecting-disk", async () => {
    if (d.config_drive.size > CONFIG_DRIVE_PARTITION_BYTES)
      throw new Error(`the config drive (${d.config_drive.size} bytes) is bigger than its ${CONFIG_DRIVE_PARTITION_BYTES / MiB} MiB partition`);
    const choice = chooseRootDisk(disks(), deployBytes(d.image.disk.size), d.root_device);
    if ("problem" in choice) throw new Error(choice.problem);
    log.info(`root disk: /dev/${choice.disk.name} (${(choice.disk.size / 2 ** 30).toFixed(1)} GiB${choice.disk.serial ? `, serial ${choice.disk.serial}` : ""})`);
    chosen(choice.disk);
    return choice.disk;
  });
  const device = `/dev/${disk.name}`;

  await phase("writing", { message: `${d.image.name} onto ${device}${d.image.map ? ", by its disk map" : ""}` });
  const fd = await step("writing", async () => openSync(device, constants.O_RDWR | constants.O_EXCL));
  try {
    const target: Target = { fd, kind: fstatSync(fd).isBlockDevice() ? "block" : "file" };
    await (d.image.map ? writeByMap(client, d, target, phase) : writeWhole(client, d, target, phase));
  } finally {
    closeSync(fd);
  }

  await phase("growing-state");
  const partitions = await step("growing-state", () => growWithConfigDrive(device));

  await phase("config-drive", { bytes_total: d.config_drive.size });
  await step("config-drive", async () => {
    const drive = Buffer.from(await (await client.download(d.config_drive.url, undefined, AbortSignal.timeout(120_000))).arrayBuffer());
    const sha256 = createHash("sha256").update(drive).digest("hex");
    if (drive.length !== d.config_drive.size || sha256 !== d.config_drive.sha256)
      throw new ImageMismatch(`the config drive is ${drive.length} bytes with sha256 ${sha256}, not ${d.config_drive.size} bytes with ${d.config_drive.sha256}`);
    writeConfigDrive(device, partitions, drive);
  });
  return { disk, partitions };
}

/** The state partition grown to fill the disk but for the config drive's partition at its end. */
export const growWithConfigDrive = (device: string) => growStatePartition(device, { tail: { name: CONFIG_DRIVE_LABEL, bytes: CONFIG_DRIVE_PARTITION_BYTES } });

/** The config drive's bytes into its partition (made by growWithConfigDrive). */
export function writeConfigDrive(device: string, partitions: GptPartition[], drive: Uint8Array) {
  const part = partitions.find((p) => p.name === CONFIG_DRIVE_LABEL);
  if (!part) throw new Error(`no ${CONFIG_DRIVE_LABEL} partition after growing the disk`);
  if (drive.length > CONFIG_DRIVE_PARTITION_BYTES) throw new Error(`the config drive (${drive.length} bytes) is bigger than its ${CONFIG_DRIVE_PARTITION_BYTES / MiB} MiB partition`);
  const out = openSync(device, constants.O_RDWR | constants.O_EXCL);
  try {
    for (let done = 0; done < drive.length; ) done += writeSync(out, drive, done, drive.length - done, part.start * 512 + done);
    fsyncSync(out);
    // A disk's kernel table learns of the new partition's content; a disk file (a test's) has none.
    if (fstatSync(out).isBlockDevice()) rereadPartitions(out);
  } finally {
    closeSync(out);
  }
  log.info(`config drive written to ${part.node} (${CONFIG_DRIVE_LABEL})`);
}

/** The whole disk streams in, every byte hashed (without a disk map). */
function writeWhole(client: DeployClient, d: DeployInstructions, target: Target, phase: Phase) {
  return writeWholeImage(target, d.image.disk, (signal) => client.download(d.image.disk.url, d.store_token, signal, { storeCa: d.store_ca }), phase);
}

/**
 * A whole raw disk from `open`'s answer onto `target`, every byte hashed; the
 * disk is made bootable (its first and last MiB written) only once the size
 * and sha256 are the ones expected.
 */
export async function writeWholeImage(target: Target, expect: { size: number; sha256: string }, open: (signal: AbortSignal) => Promise<Response>, phase: Phase) {
  await phase("writing", { bytes_done: 0, bytes_total: expect.size });
  const writer = await step("writing", async () => {
    wipeEnds(target);
    const writer = new ImageWriter(target, expect);
    await streamInto(open, writer, (n) => phase("writing", { bytes_done: n, bytes_total: expect.size }));
    log.info(`written ${(writer.written / MiB).toFixed(0)} MiB of data, zeroed ${(writer.zeroed / MiB).toFixed(0)} MiB without writing`);
    return writer;
  });
  await phase("verifying", { bytes_done: expect.size, bytes_total: expect.size });
  await step("verifying", async () => {
    const got = writer.finish();
    log.info(`the image is ${got.size} bytes with sha256 ${got.sha256}, as the deployer named it: making the disk bootable`);
    writer.commit();
  });
}

/** Only the disk's data, chunk by chunk as its map lists it, each chunk verified; the gaps zeroed. */
function writeByMap(client: DeployClient, d: DeployInstructions, target: Target, phase: Phase) {
  const get = (url: string, headers: Record<string, string>, signal: AbortSignal) => client.download(url, d.store_token, signal, { headers, storeCa: d.store_ca });
  return writeMappedImage(target, { ...d.image, map: d.image.map! }, get, phase);
}

/**
 * A raw disk by its map (wire/disk-map.ts): the map fetched and checked
 * against its sha256 and the disk's, then only the chunks it lists, by
 * Range on the disk's URL, each checked; the gaps zeroed. The disk is made
 * bootable only once every chunk matched.
 */
export async function writeMappedImage(target: Target, image: Parameters<typeof MapWriter.open>[1], get: Get, phase: Phase) {
  const writer = await step("writing", async () => {
    wipeEnds(target);
    return MapWriter.open(get, image, target);
  });
  const total = writer.bytesTotal;
  log.info(`the disk map: ${(total / MiB).toFixed(0)} MiB of data in ${writer.map.chunks.length} chunks, ${(writer.map.disk.size / MiB).toFixed(0)} MiB in all${writer.pack ? `, fetched as its pack's zstd frames (${(writer.bytesFetched / MiB).toFixed(0)} MiB)` : ""}; ${writer.pack ? "checked and decompressed" : "hashed"} ${writer.hashThreads ? `on ${writer.hashThreads} thread${writer.hashThreads > 1 ? "s" : ""} of its own` : "on this one"}`);
  await phase("writing", { bytes_done: 0, bytes_total: total });
  await step("writing", async () => {
    let last = performance.now();
    await writer.write((n) => {
      if (performance.now() - last < PROGRESS_EVERY_MS) return;
      last = performance.now();
      // Not awaited: the next chunks need not wait for the report (and a lost one is no failure).
      phase("writing", { bytes_done: n, bytes_total: total }).catch(() => {});
    });
    log.info(`written ${(writer.written / MiB).toFixed(0)} MiB of data, zeroed ${(writer.zeroed / MiB).toFixed(0)} MiB without fetching or writing it`);
  });
  await phase("verifying", { bytes_done: total, bytes_total: total });
  await step("verifying", async () => {
    const got = writer.finish();
    log.info(`all ${got.chunks} chunks (${got.bytes} bytes) matched the disk map, whose sha256 the deployer named: making the disk bootable`);
    writer.commit();
  });
}

/** A step's failure names the step (the phases of wire/deploy.ts). */
export const step = <T>(name: RamdiskPhase, fn: () => Promise<T>): Promise<T> =>
  fn().catch((e: unknown) => {
    throw e instanceof DeployStepFailed ? e : new DeployStepFailed(name, (e as Error).message, { cause: e });
  });

/** Old signatures gone first (a partition table, a filesystem, RAID metadata at either end): wipefs's first and last MiB. */
export function wipeEnds(target: Target) {
  const size = target.kind === "block" ? blockDeviceSize(target.fd) : fstatSync(target.fd).size;
  const zero = target.kind === "block" ? zeroOutBlock : zeroOutFile;
  const span = Math.min(MiB, size);
  zero(target.fd, 0, span);
  if (size > span) zero(target.fd, Math.max(size - MiB, span), Math.min(MiB, size - span));
}

async function streamInto(open: (signal: AbortSignal) => Promise<Response>, writer: ImageWriter, progress: (bytes: number) => Promise<void>) {
  const abort = new AbortController();
  let stall = setTimeout(() => abort.abort(new Error(`the download stalled (nothing for ${STALL_MS / 1000} s)`)), STALL_MS);
  try {
    const res = await open(abort.signal);
    let last = performance.now();
    for await (const chunk of res.body!) {
      clearTimeout(stall);
      stall = setTimeout(() => abort.abort(new Error(`the download stalled (nothing for ${STALL_MS / 1000} s)`)), STALL_MS);
      writer.push(chunk);
      if (performance.now() - last > PROGRESS_EVERY_MS) {
        last = performance.now();
        // Not awaited: the next bytes need not wait for the report (and a lost one is no failure).
        progress(writer.bytesReceived).catch(() => {});
      }
    }
  } finally {
    clearTimeout(stall);
  }
}
