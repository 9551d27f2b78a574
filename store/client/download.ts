import { getHashes } from "node:crypto";
import { closeSync, constants, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fsyncDir } from "../../lib/atomic.ts";
import type { StoreClient } from "./client.ts";
import { CorruptDownload, ImageUnavailable, StoreRequestFailed } from "./errors.ts";
import type { GlanceImage } from "./image.ts";
import { FileHash } from "../../lib/parallel-hash.ts";

/**
 * Download an image's data whole, resuming with Range after a cut
 * connection, and verify it as the glance CLI does: by os_hash_value with
 * os_hash_algo, else the md5 checksum, else Content-MD5. The bytes collect in
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

function verifier(image: GlanceImage): { algo: string; expected: string } | undefined {
  if (image.os_hash_algo && image.os_hash_value && getHashes().includes(image.os_hash_algo))
    return { algo: image.os_hash_algo, expected: image.os_hash_value };
  if (image.checksum) return { algo: "md5", expected: image.checksum };
  return undefined;
}

/** Only an active image has data; say so before a request or a file. */
export function requireData(image: GlanceImage) {
  if (image.status !== "active") throw new ImageUnavailable(image.name ? `${image.name} (${image.id})` : image.id, image.status);
}

export async function downloadImage(
  client: StoreClient,
  image: GlanceImage,
  out: string,
  options: { retries?: number; backoffMs?: number } = {},
): Promise<DownloadReport> {
  requireData(image);
  const retries = options.retries ?? 5;
  const check = verifier(image);
  const partial = join(dirname(out), `.${basename(out)}.${(image.os_hash_value ?? image.checksum ?? image.id).slice(0, 16)}.partial`);
  // Without a hash on the record, md5 still serves for a Content-MD5 header.
  const algo = check?.algo ?? "md5";
  let contentMd5: string | undefined;

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
        contentMd5 = res.headers.get("Content-MD5") ?? contentMd5;
        if (have !== before + res.written) throw new Error(`the download did not append to ${partial}: ${before} + ${res.written} bytes, the file has ${have}`);
        break;
      } catch (e) {
        if (e instanceof StoreRequestFailed || attempt >= retries) throw e;
        await Bun.sleep((options.backoffMs ?? 200) * 2 ** attempt);
      }
    }
    const expected = check ?? (contentMd5 ? { algo: "md5", expected: contentMd5 } : undefined);
    const [actual] = await hash.digest(have);
    if (expected && actual !== expected.expected) {
      rmSync(partial, { force: true });
      throw new CorruptDownload(`image ${image.id}`, `${expected.algo}:${expected.expected}`, `${expected.algo}:${actual}`);
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
