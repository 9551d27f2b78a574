import { createHash } from "node:crypto";
import { existsSync, ftruncateSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import { publishAtomically, stageFile } from "../lib/atomic.ts";
import { dataRuns } from "../lib/sparse.ts";
import type { MapDownload } from "../wire/deploy.ts";
import { DISK_MAP_ARTIFACT, DISK_PACK_ARTIFACT } from "../wire/disk-map.ts";
import { Sha256Hex } from "../wire/image-ref.ts";
import type { Manifest } from "../wire/manifest.ts";
import type { StoreClient } from "../store/client/client.ts";
import { BadImageRef, ImageUnavailable, UnknownImage } from "../store/client/errors.ts";
import type { GlanceImage } from "../store/client/image.ts";
import { resolveImage } from "../store/client/resolve.ts";
import { checkImage, signedManifest } from "../store/client/signed.ts";
import { ImageNotTrusted } from "../lib/errors.ts";
import type { TrustedKey } from "../lib/image-trust.ts";
import type { DiskImage } from "./drivers/driver.ts";
import { ImageCorrupt, RoleImageUnusable } from "./errors.ts";

/**
 * Images for nodes: a role's reference resolved against the store to one
 * image (its manifest names the raw golden disk by sha256), and a local
 * cache of those disks by digest, so that N nodes of one image download it
 * once. A download streams from the store's blob, is hashed as it comes, is
 * written sparse (zero blocks become holes) and gets its name only once its
 * sha256 matches the manifest's and it is on disk: a cut or corrupt
 * download, or a power cut, leaves nothing that passes for the image.
 */
export interface ResolvedImage {
  role: string;
  ref: string;
  id: string;
  name: string;
  digest: string;
  manifest: Manifest;
  disk: { sha256: string; size: number };
  /** Where the disk's data is (wire/disk-map.ts), when the build wrote its map: a ramdisk then fetches only that. */
  diskMap?: { sha256: string; size: number; pack?: { sha256: string; size: number } };
  kernel?: { sha256: string; size: number };
  /** The trusted key that signed its manifest (when the stack trusts keys). */
  signer?: TrustedKey;
}

/**
 * A role's reference (or `ooo takeover --image`'s), resolved as every other
 * command resolves it. With trusted keys, the image's manifest must be
 * signed by one of them and name the image's own data (store/client/signed.ts):
 * this runs before any disk is written, and everything the nodes get — the
 * digest, the disk's sha256 — comes from that signed manifest.
 */
export async function resolveRoleImage(
  client: StoreClient,
  role: string,
  ref: string,
  options: { requireDisk?: boolean; trustedKeys?: TrustedKey[] } = {},
): Promise<ResolvedImage> {
  let image: GlanceImage;
  try {
    image = await resolveImage(client, ref);
  } catch (e) {
    if (e instanceof UnknownImage) throw new RoleImageUnusable(role, ref, e.known, e.hint);
    if (e instanceof ImageUnavailable || e instanceof BadImageRef) throw new RoleImageUnusable(role, ref, e.message, e.hint);
    throw e;
  }
  if (image.status !== "active") throw new RoleImageUnusable(role, ref, `image ${image.id} is ${image.status}, not active`);
  if (!image.ooo_manifest) throw new RoleImageUnusable(role, ref, `image ${image.id} has no build manifest (was it published with ooo publish?)`);
  const signed = await signedManifest(client, image);
  const manifest = signed.manifest;
  let signer: TrustedKey | undefined;
  if (options.trustedKeys?.length) {
    try {
      signer = checkImage(image, signed, options.trustedKeys);
    } catch (e) {
      if (e instanceof ImageNotTrusted) throw new RoleImageUnusable(role, ref, e.reason, e.hint);
      throw e;
    }
  }
  const raw = manifest.artifacts.find((a) => a.type === "raw");
  if (!raw && options.requireDisk !== false)
    throw new RoleImageUnusable(role, ref, `${manifest.name} ${manifest.digest} has no raw disk: build it with -t raw,tar and publish it again`);
  const kernel = manifest.artifacts.find((a) => a.type === "vmlinuz");
  const map = manifest.artifacts.find((a) => a.type === DISK_MAP_ARTIFACT);
  const pack = manifest.artifacts.find((a) => a.type === DISK_PACK_ARTIFACT);
  return {
    role,
    ref,
    id: image.id,
    name: manifest.name,
    digest: manifest.digest,
    manifest,
    disk: raw ? { sha256: raw.sha256, size: raw.size } : { sha256: "", size: 0 },
    ...(raw && map ? { diskMap: { sha256: map.sha256, size: map.size, ...(pack ? { pack: { sha256: pack.sha256, size: pack.size } } : {}) } } : {}),
    kernel: kernel && { sha256: kernel.sha256, size: kernel.size },
    signer,
  };
}

/** The disk's map (and pack) as a ramdisk downloads them, each blob at `urlOf` its sha256. */
export async function mapDownload(image: ResolvedImage, urlOf: (sha256: string) => string | Promise<string>): Promise<MapDownload | undefined> {
  const map = image.diskMap;
  if (!map) return undefined;
  return {
    url: await urlOf(map.sha256),
    sha256: map.sha256,
    size: map.size,
    ...(map.pack ? { pack: { url: await urlOf(map.pack.sha256), ...map.pack } } : {}),
  };
}

/**
 * Stream a blob into `dest`: hashed, sparse, verified, durable. The data
 * goes into a file without a name (lib/atomic.ts) and gets `dest` only once
 * its sha256 matched and it was fsynced, and the folder is fsynced after:
 * a cut, corrupt download or a power cut never leaves a half file under the
 * name. Gathers the stream into 1 MiB pieces before writing.
 */
async function downloadBlob(client: StoreClient, sha256: string, size: number, dest: string, onProgress?: (bytes: number) => void): Promise<void> {
  const res = await client.request("GET", `/v2/ooo/blobs/sha256:${sha256}`);
  const staged = stageFile(dirname(dest));
  const hash = createHash("sha256");
  const piece = Buffer.allocUnsafe(1 << 20);
  let used = 0;
  let pos = 0;
  const flush = () => {
    for (const [start, end] of dataRuns(piece.subarray(0, used))) writeSync(staged.fd, piece, start, end - start, pos + start);
    pos += used;
    used = 0;
    onProgress?.(pos);
  };
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      let at = 0;
      while (at < chunk.length) {
        const n = Math.min(chunk.length - at, piece.length - used);
        piece.set(chunk.subarray(at, at + n), used);
        used += n;
        at += n;
        if (used === piece.length) flush();
      }
    }
    flush();
    ftruncateSync(staged.fd, pos);
    const got = hash.digest("hex");
    if (pos !== size) throw new ImageCorrupt(`blob sha256:${sha256}`, `${sha256} (${size} bytes)`, `${got} (${pos} bytes)`);
    if (got !== sha256) throw new ImageCorrupt(`blob sha256:${sha256}`, sha256, got);
    staged.publish(dest);
  } catch (e) {
    staged.discard();
    throw e;
  }
}

/**
 * What a cached file was when it was verified: the inode and its change
 * time as well as size and mtime. A program can set a file's mtime back
 * after writing into it (touch -r, cp -p, an unpacker), but not its ctime,
 * which the kernel moves on every write: a file changed since is hashed
 * again before it is used.
 */
const Stamp = z.object({ sha256: Sha256Hex, dev: z.string(), ino: z.string(), size: z.string(), mtimeNs: z.string(), ctimeNs: z.string() });
type Stamp = z.infer<typeof Stamp>;

function stampOf(path: string, sha256: string): Stamp | undefined {
  let st;
  try {
    st = statSync(path, { bigint: true });
  } catch {
    return undefined;
  }
  return { sha256, dev: String(st.dev), ino: String(st.ino), size: String(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs) };
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of Bun.file(path).stream()) hash.update(chunk);
  return hash.digest("hex");
}

/** The deployer's cache of golden disks, by content: `<dir>/<sha256>.raw`, each with a `.verified` stamp. */
export class ImageCache {
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private path(sha256: string, ext: string) {
    return join(this.dir, `${sha256}.${ext}`);
  }

  /** The file is the one that was verified, untouched since. */
  private isVerified(path: string, sha256: string): boolean {
    const now = stampOf(path, sha256);
    if (!now) return false;
    try {
      const stamp = Stamp.parse(JSON.parse(readFileSync(`${path}.verified`, "utf8")));
      return JSON.stringify(stamp) === JSON.stringify(now);
    } catch {
      return false;
    }
  }

  private async stamp(path: string, sha256: string) {
    const stamp = stampOf(path, sha256)!;
    await publishAtomically(`${path}.verified`, async (p) => writeFileSync(p, JSON.stringify(stamp) + "\n"));
  }

  has(image: ResolvedImage): boolean {
    return this.isVerified(this.path(image.disk.sha256, "raw"), image.disk.sha256);
  }

  /** Verified already, or changed since and hashed again: usable. Anything else is removed. */
  private async usable(path: string, sha256: string): Promise<boolean> {
    if (this.isVerified(path, sha256)) return true;
    if (existsSync(path) && (await sha256Of(path)) === sha256) {
      await this.stamp(path, sha256);
      return true;
    }
    rmSync(path, { force: true });
    rmSync(`${path}.verified`, { force: true });
    return false;
  }

  private async fetch(client: StoreClient, sha256: string, size: number, path: string) {
    let p = this.inFlight.get(path);
    if (!p) {
      p = (async () => {
        if (await this.usable(path, sha256)) return;
        await downloadBlob(client, sha256, size, path);
        await this.stamp(path, sha256);
      })();
      this.inFlight.set(path, p);
      p.finally(() => this.inFlight.delete(path)).catch(() => {});
    }
    await p;
  }

  /** One blob by its sha256 (the deploy ramdisk's kernel, its initramfs), downloaded once and verified; its path in the cache. */
  async ensureBlob(client: StoreClient, blob: { sha256: string; size: number }, ext: string): Promise<string> {
    const path = this.path(blob.sha256, ext);
    await this.fetch(client, blob.sha256, blob.size, path);
    return path;
  }

  /** The image's disk (and kernel), downloaded once however many nodes ask at the same time. */
  async ensure(client: StoreClient, image: ResolvedImage): Promise<DiskImage> {
    const disk = this.path(image.disk.sha256, "raw");
    const kernel = image.kernel && this.path(image.kernel.sha256, "vmlinuz");
    await Promise.all([
      this.fetch(client, image.disk.sha256, image.disk.size, disk),
      image.kernel && kernel ? this.fetch(client, image.kernel.sha256, image.kernel.size, kernel) : undefined,
    ]);
    return {
      digest: image.digest,
      path: disk,
      sha256: image.disk.sha256,
      size: image.disk.size,
      url: `${client.url}/v2/ooo/blobs/sha256:${image.disk.sha256}`,
      kernel,
    };
  }
}
