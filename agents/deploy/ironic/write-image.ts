import { closeSync, constants, fstatSync, openSync } from "node:fs";
import type { GptPartition } from "../../../lib/gpt-grow.ts";
import { log } from "../../../lib/log.ts";
import type { MapDownload, RootDeviceHints } from "../../../wire/deploy.ts";
import { deployBytes } from "../../../wire/root-device.ts";
import { DeployStepFailed } from "../../errors.ts";
import type { Target } from "../held-disk.ts";
import { growWithConfigDrive, step, writeConfigDrive, writeMappedImage, writeWholeImage } from "../install.ts";
import type { ImageInfo } from "./protocol.ts";

/**
 * Ironic's `write_image` deploy step, done as ooo's own deploy does it: the
 * whole raw disk streamed onto the root device, bootable only once its
 * sha256 is the one Ironic named (`image_os_hash_value`); the state
 * partition grown; Ironic's config drive (gzip and base64 of an ISO, or a
 * URL of one) written into the `config-2` partition at the disk's end.
 * Raw images only, checked by sha256 only: an ooo image is both, and
 * anything else is refused with what to set. With the disk's map (ooo's
 * driver puts it in instance_info) only the disk's data is fetched, each
 * chunk checked by the map, the map by its sha256 and the disk's.
 */
export interface WriteTarget {
  /** The device (on a test host, a file) for an image of `bytes`, by the node's root device hints. */
  rootDevice(bytes: number, hints: RootDeviceHints | undefined): string;
}

export interface Written {
  device: string;
  partitions: GptPartition[];
}

/** What Ironic's image_info must say for ooo's agent to write it. */
export function checkImageInfo(info: ImageInfo): { url: string; sha256: string } {
  if (info.disk_format !== "raw")
    throw new DeployStepFailed("writing", `image ${info.id} is ${info.disk_format ?? "of no stated format"}: ooo's agent writes raw images only (instance_info image_disk_format: raw)`);
  if (info.os_hash_algo !== "sha256" || !info.os_hash_value || !/^[0-9a-f]{64}$/.test(info.os_hash_value))
    throw new DeployStepFailed("writing", `image ${info.id} has no sha256 to check it by (instance_info image_os_hash_algo: sha256 and image_os_hash_value); an md5 checksum is no check`);
  return { url: info.urls[0]!, sha256: info.os_hash_value };
}

/** Ironic's config drive: a URL of one, or gzip then base64 of the image. */
export async function configDriveBytes(configdrive: string, ca?: string): Promise<Uint8Array> {
  if (/^https?:\/\//.test(configdrive)) {
    const res = await fetch(configdrive, { signal: AbortSignal.timeout(120_000), ...(ca ? { tls: { ca } } : {}) });
    if (!res.ok) throw new Error(`GET the config drive: ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  try {
    return Bun.gunzipSync(Buffer.from(configdrive, "base64"));
  } catch (e) {
    throw new Error(`the config drive is neither a URL nor gzip in base64: ${(e as Error).message}`);
  }
}

const fetchFrom = (url: string, ca: string | undefined) => async (signal: AbortSignal) => {
  const res = await fetch(url, { signal, ...(ca ? { tls: { ca } } : {}) });
  if (!res.ok || !res.body) throw new Error(`GET ${url.split("?")[0]}: ${res.status} ${res.ok ? "without a body" : (await res.text()).slice(0, 200).trim()}`);
  return res;
};

/** GETs of the disk's chunks (Range) and of its map, from the store's signed URLs. */
const rangeFetch = (ca: string | undefined) => async (url: string, headers: Record<string, string>, signal: AbortSignal) => {
  const res = await fetch(url, { headers, signal, ...(ca ? { tls: { ca } } : {}) });
  if (!res.ok || !res.body) throw new Error(`GET ${url.split("?")[0]}: ${res.status} ${res.ok ? "without a body" : (await res.text()).slice(0, 200).trim()}`);
  return res;
};

/** The image's size, from a HEAD of its URL (Ironic does not say it; a signed store URL answers HEAD). */
async function imageSize(url: string, ca: string | undefined): Promise<number> {
  const res = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(30_000), ...(ca ? { tls: { ca } } : {}) });
  const size = Number(res.headers.get("content-length"));
  if (!res.ok || !Number.isSafeInteger(size) || size <= 0) throw new Error(`HEAD ${url.split("?")[0]}: ${res.status}${res.ok ? ", without a size" : ""}`);
  return size;
}

export async function writeImage(
  target: WriteTarget,
  o: { image: ImageInfo; configdrive?: string | null; hints?: RootDeviceHints; map?: MapDownload; ca?: string },
): Promise<Written> {
  const { url, sha256 } = checkImageInfo(o.image);
  const size = await step("selecting-disk", () => imageSize(url, o.ca));
  const device = await step("selecting-disk", async () => target.rootDevice(deployBytes(size), o.hints));
  // The image's id is its URL's last part: a signed URL's signature stays out of the log.
  log.info(`write_image: ${o.image.id.split("?")[0]} (${(size / 2 ** 20).toFixed(0)} MiB) onto ${device}${o.map ? ", by its disk map" : ""}`);
  const fd = await step("writing", async () => openSync(device, constants.O_RDWR | constants.O_EXCL));
  try {
    const t: Target = { fd, kind: fstatSync(fd).isBlockDevice() ? "block" : "file" };
    const disk = { url, sha256, size };
    if (o.map) await writeMappedImage(t, { name: o.image.id.split("?")[0]!, digest: `sha256:${sha256}`, disk, map: o.map }, rangeFetch(o.ca), async () => {});
    else await writeWholeImage(t, disk, fetchFrom(url, o.ca), async () => {});
  } finally {
    closeSync(fd);
  }
  const partitions = await step("growing-state", () => growWithConfigDrive(device));
  if (o.configdrive) {
    const drive = await step("config-drive", () => configDriveBytes(o.configdrive!, o.ca));
    await step("config-drive", async () => writeConfigDrive(device, partitions, drive));
  }
  return { device, partitions };
}
