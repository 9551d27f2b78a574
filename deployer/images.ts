import { createHash } from "node:crypto";
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { dataRuns } from "../lib/sparse.ts";
import type { Manifest } from "../wire/manifest.ts";
import type { StoreClient } from "../store/client/client.ts";
import { BadImageRef, ImageUnavailable, UnknownImage } from "../store/client/errors.ts";
import type { GlanceImage } from "../store/client/image.ts";
import { resolveImage } from "../store/client/resolve.ts";
import type { DiskImage } from "./drivers/driver.ts";
import { ImageCorrupt, RoleImageUnusable } from "./errors.ts";

/**
 * Images for nodes: a role's reference resolved against the store to one
 * image (its manifest names the raw golden disk by sha256), and a local
 * cache of those disks by digest, so that N nodes of one image download it
 * once. A download streams from the store's blob, is hashed as it comes, is
 * written sparse (zero blocks become holes) and gets its name only once its
 * sha256 matches the manifest's: a cut or corrupt download leaves nothing.
 */
export interface ResolvedImage {
  role: string;
  ref: string;
  id: string;
  name: string;
  digest: string;
  manifest: Manifest;
  disk: { sha256: string; size: number };
  kernel?: { sha256: string; size: number };
}

/** A role's reference (or `ooo takeover --image`'s), resolved as every other command resolves it. */
export async function resolveRoleImage(client: StoreClient, role: string, ref: string, options: { requireDisk?: boolean } = {}): Promise<ResolvedImage> {
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
  const manifest = await client.getManifest(image.id);
  const raw = manifest.artifacts.find((a) => a.type === "raw");
  if (!raw && options.requireDisk !== false)
    throw new RoleImageUnusable(role, ref, `${manifest.name} ${manifest.digest} has no raw disk: build it with -t raw,tar and publish it again`);
  const kernel = manifest.artifacts.find((a) => a.type === "vmlinuz");
  return {
    role,
    ref,
    id: image.id,
    name: manifest.name,
    digest: manifest.digest,
    manifest,
    disk: raw ? { sha256: raw.sha256, size: raw.size } : { sha256: "", size: 0 },
    kernel: kernel && { sha256: kernel.sha256, size: kernel.size },
  };
}

/**
 * Stream a blob into `dest`: hashed, sparse, verified. Returns the bytes
 * received. Gathers the stream into 1 MiB pieces before writing.
 */
async function downloadBlob(client: StoreClient, sha256: string, size: number, dest: string, onProgress?: (bytes: number) => void): Promise<void> {
  const res = await client.request("GET", `/v2/ooo/blobs/sha256:${sha256}`);
  const tmp = `${dest}.partial-${process.pid}`;
  const fd = openSync(tmp, "w", 0o644);
  let open = true;
  const hash = createHash("sha256");
  const piece = Buffer.allocUnsafe(1 << 20);
  let used = 0;
  let pos = 0;
  const flush = () => {
    for (const [start, end] of dataRuns(piece.subarray(0, used))) writeSync(fd, piece, start, end - start, pos + start);
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
    ftruncateSync(fd, pos);
    const got = hash.digest("hex");
    if (pos !== size) throw new ImageCorrupt(`blob sha256:${sha256}`, `${sha256} (${size} bytes)`, `${got} (${pos} bytes)`);
    if (got !== sha256) throw new ImageCorrupt(`blob sha256:${sha256}`, sha256, got);
    closeSync(fd);
    open = false;
    renameSync(tmp, dest);
  } catch (e) {
    if (open) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** The deployer's cache of golden disks, by content: `<dir>/<sha256>.raw`. */
export class ImageCache {
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private path(sha256: string, ext: string) {
    return join(this.dir, `${sha256}.${ext}`);
  }

  /** A verified file is remembered by its size and mtime; a changed file is fetched again. */
  private isVerified(path: string): boolean {
    const stamp = `${path}.verified`;
    if (!existsSync(path) || !existsSync(stamp)) return false;
    const st = statSync(path);
    return readFileSync(stamp, "utf8") === `${st.size} ${st.mtimeMs}`;
  }

  has(image: ResolvedImage): boolean {
    return this.isVerified(this.path(image.disk.sha256, "raw"));
  }

  private async fetch(client: StoreClient, sha256: string, size: number, path: string) {
    if (this.isVerified(path)) return;
    let p = this.inFlight.get(path);
    if (!p) {
      p = downloadBlob(client, sha256, size, path).then(() => {
        const st = statSync(path);
        writeFileSync(`${path}.verified`, `${st.size} ${st.mtimeMs}`);
      });
      this.inFlight.set(path, p);
      p.finally(() => this.inFlight.delete(path)).catch(() => {});
    }
    await p;
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
