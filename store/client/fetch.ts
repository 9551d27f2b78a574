import { createHash } from "node:crypto";
import { ftruncateSync, readSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { stageFile } from "../../lib/atomic.ts";
import { ALGORITHM, chunkId, chunkStream } from "../../lib/chunking.ts";
import { log } from "../../lib/log.ts";
import { ChunkIndex, chunkOffsets } from "../../wire/chunk-index.ts";
import type { StoreClient } from "./client.ts";
import { downloadImage, requireData } from "./download.ts";
import { CorruptDownload, StoreRequestFailed } from "./errors.ts";
import type { GlanceImage } from "./image.ts";
import { openSeed } from "./seed.ts";

/**
 * Reassemble an image from its chunk index: chunks found in the seeds first
 * (an older image, the node's current root), then the missing ones fetched
 * from the store — only those, as Range requests on the image data (runs of
 * neighbouring missing chunks in one request), so it works against any
 * server that serves Range, a real Glance included. Every fetched chunk is
 * checked against its id, and the whole against the image digest, before
 * OUT gets its name (lib/atomic.ts): a failed fetch leaves nothing. The
 * digest is the caller's (`digest`: what a node's metadata or the user
 * named) when it has one; the store's record says it otherwise, and a chunk
 * index for other data than that is refused before a chunk is fetched.
 *
 * An image without a chunk index (or a server without ooo's extensions) is
 * downloaded whole, resumably.
 */
export interface FetchOptions {
  client: StoreClient;
  image: GlanceImage;
  out: string;
  /** The digest the data must have (sha256:HEX), from a source the caller trusts more than the store's record. */
  digest?: string;
  seeds?: string[];
  /** How the seeds' directory trees are put in canonical form (the image's manifest says). */
  sourceDateEpoch?: number;
  /** Parallel Range requests. */
  concurrency?: number;
  /** Largest Range request. */
  maxRequestBytes?: number;
  retries?: number;
  /** Called as data arrives (after each request), for progress reports. */
  onProgress?: (report: FetchReport) => void;
}

export interface FetchReport {
  image: string;
  digest: string;
  size: number;
  /** Bytes of chunks found in the seeds. */
  seeded: number;
  /** Bytes of image data downloaded (chunks, or the whole image). */
  fetched: number;
  /** Bytes of the chunk index itself. */
  indexBytes: number;
  chunks: { total: number; seeded: number; fetched: number };
  requests: number;
  mode: "chunks" | "whole";
}

interface Wanted {
  size: number;
  offsets: number[];
  done: boolean;
}

async function loadIndex(client: StoreClient, image: GlanceImage): Promise<{ index: ChunkIndex; bytes: number } | undefined> {
  if (!image.ooo_chunk_index) return undefined;
  const res = await client.request("GET", `/v2/images/${image.id}/chunk-index`, { ok: [200, 404] });
  if (res.status === 404) return undefined;
  const text = await res.text();
  return { index: ChunkIndex.parse(JSON.parse(text)), bytes: text.length };
}

function placeChunk(fd: number, want: Wanted, data: Uint8Array) {
  for (const offset of want.offsets) {
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, offset + done);
  }
  want.done = true;
}

/** Group missing chunks into runs of neighbours, each at most `max` bytes. */
export function missingRuns(index: ChunkIndex, isMissing: (id: string) => boolean, max: number) {
  const runs: { start: number; end: number; chunks: { id: string; size: number }[] }[] = [];
  const seen = new Set<string>();
  for (const c of chunkOffsets(index)) {
    if (!isMissing(c.id) || seen.has(c.id)) continue;
    seen.add(c.id);
    const last = runs.at(-1);
    if (last && last.end === c.offset && last.end - last.start + c.size <= max) {
      last.end += c.size;
      last.chunks.push(c);
    } else runs.push({ start: c.offset, end: c.offset + c.size, chunks: [c] });
  }
  return runs;
}

export async function fetchImage(options: FetchOptions): Promise<FetchReport> {
  const { client, image, out } = options;
  requireData(image);
  const digest = options.digest ?? image.ooo_digest ?? (image.os_hash_algo === "sha256" ? `sha256:${image.os_hash_value}` : "");
  const loaded = await loadIndex(client, image);
  if (!loaded) {
    log.info(`${image.id} has no chunk index: downloading it whole`);
    const d = await downloadImage(client, image, out, { retries: options.retries, digest: options.digest });
    return {
      image: image.id,
      digest: options.digest ?? digest,
      size: d.size,
      seeded: 0,
      fetched: d.received,
      indexBytes: 0,
      chunks: { total: 0, seeded: 0, fetched: 0 },
      requests: d.requests,
      mode: "whole",
    };
  }
  const { index } = loaded;
  if (index.chunker.algorithm !== ALGORITHM)
    throw new CorruptDownload(`chunk index of ${image.id}`, `chunker ${ALGORITHM}`, `chunker ${index.chunker.algorithm}`);
  if (digest && index.digest !== digest) throw new CorruptDownload(`chunk index of ${image.id}`, digest, index.digest);

  const wanted = new Map<string, Wanted>();
  for (const c of chunkOffsets(index)) {
    const w = wanted.get(c.id);
    if (w) w.offsets.push(c.offset);
    else wanted.set(c.id, { size: c.size, offsets: [c.offset], done: false });
  }
  let remaining = wanted.size;
  const report: FetchReport = {
    image: image.id,
    digest: index.digest,
    size: index.size,
    seeded: 0,
    fetched: 0,
    indexBytes: loaded.bytes,
    chunks: { total: wanted.size, seeded: 0, fetched: 0 },
    requests: 0,
    mode: "chunks",
  };

  const staged = stageFile(dirname(out));
  try {
    ftruncateSync(staged.fd, index.size);
    // 1. Seeds: cut each as the publisher cut the image; keep what matches.
    for (const path of options.seeds ?? []) {
      if (!remaining) break;
      const seed = openSeed(path, { sourceDateEpoch: options.sourceDateEpoch ?? 0 });
      await log.step(`scan seed ${path} (${seed.kind})`, async () => {
        for await (const data of chunkStream(seed.stream(), index.chunker)) {
          const want = wanted.get(chunkId(data));
          if (!want || want.done || want.size !== data.length) continue;
          placeChunk(staged.fd, want, data);
          report.seeded += data.length * want.offsets.length;
          report.chunks.seeded++;
          if (!--remaining) break;
        }
      });
    }
    // 2. The rest from the store, in runs of neighbouring chunks.
    const runs = missingRuns(index, (id) => !wanted.get(id)!.done, options.maxRequestBytes ?? 16 << 20);
    await log.step(`fetch ${remaining} missing chunks in ${runs.length} request${runs.length === 1 ? "" : "s"}`, async () => {
      let next = 0;
      const worker = async () => {
        while (next < runs.length) {
          const run = runs[next++]!;
          await fetchRun(client, image.id, run, options.retries ?? 5, (id, data) => {
            const want = wanted.get(id)!;
            placeChunk(staged.fd, want, data);
            report.fetched += data.length;
            report.chunks.fetched++;
          });
          report.requests++;
          options.onProgress?.(report);
        }
      };
      await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
    });
    // 3. The whole, as written, must be the image.
    await log.step("verify the reassembled image", () => {
      const h = createHash("sha256");
      const buf = Buffer.allocUnsafe(4 << 20);
      for (let at = 0; at < index.size; ) {
        const n = readSync(staged.fd, buf, 0, Math.min(buf.length, index.size - at), at);
        if (n <= 0) break;
        h.update(buf.subarray(0, n));
        at += n;
      }
      const actual = `sha256:${h.digest("hex")}`;
      if (actual !== index.digest) throw new CorruptDownload(`reassembled image ${image.id}`, index.digest, actual);
    });
    staged.publish(out);
  } catch (e) {
    staged.discard();
    throw e;
  }
  return report;
}

/** One Range request for a run of chunks; each chunk checked; retried whole on a cut. */
export async function fetchRun(
  client: StoreClient,
  id: string,
  run: { start: number; end: number; chunks: { id: string; size: number }[] },
  retries: number,
  onChunk: (id: string, data: Uint8Array) => void,
) {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await client.downloadData(id, { start: run.start, end: run.end });
      if (res.status !== 206 && !(res.status === 200 && run.start === 0))
        throw new StoreRequestFailed("GET", `/v2/images/${id}/file`, res.status, "the server did not honour the Range");
      const bytes = new Uint8Array(await res.arrayBuffer());
      let at = 0;
      for (const c of run.chunks) {
        const data = bytes.subarray(at, at + c.size);
        at += c.size;
        const actual = chunkId(data);
        if (data.length !== c.size || actual !== c.id) throw new CorruptDownload(`chunk of image ${id}`, `sha256:${c.id}`, `sha256:${actual}`);
        onChunk(c.id, data);
      }
      return;
    } catch (e) {
      if (e instanceof StoreRequestFailed || attempt >= retries) throw e;
      await Bun.sleep(100 * 2 ** attempt);
    }
  }
}
