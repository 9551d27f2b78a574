import { closeSync, constants, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fsyncDir } from "../../lib/atomic.ts";
import type { StoreClient } from "./client.ts";
import { CorruptDownload, ImageUnavailable, NothingToVerify, StoreRequestFailed } from "./errors.ts";
import type { GlanceImage } from "./image.ts";
import { FileHash } from "../../lib/parallel-hash.ts";

/**
 * Download an image's data whole, resuming with Range after a cut
 * connection, and verify it: against the digest the caller trusts
 * (`digest`, sha256:HEX: what a node's metadata or the user named), else
 * as the glance CLI does, by os_hash_value with os_hash_algo. Unlike the
 * glance CLI, never by md5 (the legacy `checksum`, Content-MD5): collisions
 * are cheap, so a store could pass off other data under it. Data with
 * nothing to check against is not downloaded at all. The bytes collect in
 * `.OUT.<hash>.partial` beside OUT, so a later run resumes too, and OUT
 * appears (renamed) only once verified.
 */
export interface DownloadReport {
  size: number;
  /** Bytes received over the network in this run. */
  received: number;
  /** Bytes that were already in the partial file. */
  resumedFrom: number;
  requests: number;
}

/** Glance's os_hash_algo values that are a check (Glance's default is sha512; ours sha256). */
const STRONG = new Set(["sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512"]);

function verifier(image: GlanceImage, digest: string | undefined): { algo: string; expected: string } {
  if (digest !== undefined) {
    if (!digest.startsWith("sha256:")) throw new NothingToVerify(image.id, `the digest to check against is ${JSON.stringify(digest)}, not sha256:HEX`);
    return { algo: "sha256", expected: digest.slice("sha256:".length) };
  }
  if (image.os_hash_algo && image.os_hash_value && STRONG.has(image.os_hash_algo)) return { algo: image.os_hash_algo, expected: image.os_hash_value };
  throw new NothingToVerify(
    image.name ? `${image.name} (${image.id})` : image.id,
    image.checksum || image.os_hash_algo ? `the store gives only ${image.os_hash_algo ?? "md5"}, which proves nothing` : "the store gives no hash of its data",
  );
}

/** Only an active image has data; say so before a request or a file. */
export function requireData(image: GlanceImage) {
  if (image.status !== "active") throw new ImageUnavailable(image.name ? `${image.name} (${image.id})` : image.id, image.status);
}

export async function downloadImage(
  client: StoreClient,
  image: GlanceImage,
  out: string,
  options: { retries?: number; backoffMs?: number; digest?: string } = {},
): Promise<DownloadReport> {
  requireData(image);
  const retries = options.retries ?? 5;
  const check = verifier(image, options.digest);
  const partial = join(dirname(out), `.${basename(out)}.${check.expected.slice(0, 16)}.partial`);
  const algo = check.algo;

  let have = existsSync(partial) ? statSync(partial).size : 0;
  if (image.size !== null && image.size !== undefined && have > image.size) {
    rmSync(partial);
    have = 0;
  }
  const resumedFrom = have;
  // The body goes to the file from the socket (appending), and a worker
  // thread hashes the file right behind it, from the page cache — the bytes
  // already there (a resumed download) first — and starts the disk's
  // writeback as it goes, so the final fsync is short.
  const fd = openSync(partial, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND, 0o644);
  let hash = new FileHash(fd, [algo], { writeback: true });
  let received = 0;
  let requests = 0;
  let complete = false;
  try {
    for (let attempt = 0; ; attempt++) {
      if (image.size !== null && image.size !== undefined && have === image.size && have > 0) break;
      requests++;
      try {
        const before = have;
        let res;
        try {
          res = await client.downloadDataToFile(image.id, fd, have ? { start: have } : undefined);
        } finally {
          // What landed counts, also when the connection was cut.
          have = fstatSync(fd).size;
          received += have - before;
        }
        if (res.status === 204) throw new StoreRequestFailed("GET", `/v2/images/${image.id}/file`, 204, `Image ${image.id} has no data.`);
        if (res.rangeIgnored) {
          // The server does not resume: start over, the file and its hash, and ask for it all.
          await hash.cancel();
          ftruncateSync(fd, 0);
          have = 0;
          hash = new FileHash(fd, [algo], { writeback: true });
          attempt--;
          continue;
        }
        if (have !== before + res.written) throw new Error(`the download did not append to ${partial}: ${before} + ${res.written} bytes, the file has ${have}`);
        break;
      } catch (e) {
        if (e instanceof StoreRequestFailed || attempt >= retries) throw e;
        await Bun.sleep((options.backoffMs ?? 200) * 2 ** attempt);
      }
    }
    const [actual] = await hash.digest(have);
    if (actual !== check.expected) {
      rmSync(partial, { force: true });
      throw new CorruptDownload(`image ${image.id}`, `${check.algo}:${check.expected}`, `${check.algo}:${actual}`);
    }
    if (image.size !== null && image.size !== undefined && have !== image.size)
      throw new CorruptDownload(`image ${image.id}`, `${image.size} bytes`, `${have} bytes`);
    fsyncSync(fd);
    complete = true;
  } finally {
    // No worker may still read the fd when it is closed (its number could be reused).
    await hash.cancel();
    // A partial file is kept to resume from; an empty one is only litter.
    const empty = fstatSync(fd).size === 0;
    closeSync(fd);
    if (empty && !complete) rmSync(partial, { force: true });
  }
  renameSync(partial, out);
  fsyncDir(dirname(out));
  return { size: have, received, resumedFrom, requests };
}
