import { createHash } from "node:crypto";
import { log } from "../../lib/log.ts";
import { PieceHasher } from "../../lib/parallel-hash.ts";
import type { DeployInstructions, Download } from "../../wire/deploy.ts";
import { DiskMap, mappedBytes, packedBytes, zeroRanges, type DiskMapChunk } from "../../wire/disk-map.ts";
import { ImageMismatch, RangeNotServed } from "../errors.ts";
import { HeldDisk, type Target } from "./held-disk.ts";

/**
 * The golden disk by its map (wire/disk-map.ts), instead of streaming all
 * of it: the map first, checked against the sha256 the deployer named (from
 * the manifest: trust runs manifest → map → chunks); then only the chunks,
 * each a Range request on the raw disk's URL, several at once, each checked
 * against its digest on hash threads before it goes to the disk; the gaps
 * are zeroed by the device. As with the whole disk, the first and last MiB
 * are held back (HeldDisk) until every chunk has been verified and the map
 * is of the disk the instructions name.
 *
 * With the disk's pack (the instructions name it and the map gives every
 * chunk its frame) each chunk comes as its zstd frame, a Range request on
 * the pack's URL: the frame is checked against its digest in the map, then
 * decompressed to the chunk's length, both on the hash threads.
 */

/** Requests in flight: enough to keep the network busy while chunks are hashed and written. */
export const CONCURRENCY = 4;
/** Tries of one chunk whose transfer failed (a wrong sha256 is not tried again). */
const TRIES = 3;
/** A chunk (4 MiB) that takes this long has stalled. */
const CHUNK_TIMEOUT_MS = 60_000;

/** A GET with extra headers (Range): the deploy client's download, with the store's token. */
export type Get = (url: string, headers: Record<string, string>, signal: AbortSignal) => Promise<Response>;
type Image = DeployInstructions["image"] & { map: NonNullable<DeployInstructions["image"]["map"]> };

export class MapWriter {
  private readonly disk: HeldDisk;
  private readonly hasher: PieceHasher;
  private readonly abort = new AbortController();
  private placed = 0;
  /** Chunk bytes verified and on the disk. */
  fetched = 0;

  private constructor(
    private readonly get: Get,
    private readonly url: string,
    readonly map: DiskMap,
    target: Target,
    /** The disk's pack, when its frames travel instead of the chunks. */
    readonly pack?: Download,
  ) {
    this.disk = new HeldDisk(target, map.disk.size);
    this.hasher = new PieceHasher(map.hash);
  }

  /** Fetch the map and check it: its sha256 is the deployer's, and it maps the disk the instructions name. */
  static async open(get: Get, image: Image, target: Target): Promise<MapWriter> {
    const res = await get(image.map.url, {}, AbortSignal.timeout(CHUNK_TIMEOUT_MS));
    const bytes = new Uint8Array(await res.arrayBuffer());
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    if (bytes.length !== image.map.size || sha256 !== image.map.sha256)
      throw new ImageMismatch(`the disk map is ${bytes.length} bytes with sha256 ${sha256}, not ${image.map.size} bytes with ${image.map.sha256} as the deployer said`);
    let parsed: ReturnType<typeof DiskMap.safeParse>;
    try {
      parsed = DiskMap.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    } catch (e) {
      throw new ImageMismatch(`the disk map is not JSON: ${(e as Error).message}`);
    }
    if (!parsed.success) throw new ImageMismatch(`the disk map is not one: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    const map = parsed.data;
    if (map.disk.size !== image.disk.size || map.disk.sha256 !== image.disk.sha256)
      throw new ImageMismatch(`the disk map is of a disk of ${map.disk.size} bytes with sha256 ${map.disk.sha256}, not of ${image.name}'s (${image.disk.size} bytes, ${image.disk.sha256})`);
    const pack = image.map.pack;
    if (pack && map.chunks.length > 0 && !map.chunks[0]!.packed) throw new ImageMismatch(`the deployer named a disk pack (${pack.url.split("?")[0]}), but the disk map has no frames`);
    if (pack && packedBytes(map) !== pack.size)
      throw new ImageMismatch(`the disk map's frames make ${packedBytes(map)} bytes, but the disk pack is ${pack.size} bytes as the deployer said`);
    return new MapWriter(get, image.disk.url, map, target, pack && map.chunks.length > 0 ? pack : undefined);
  }

  /** Threads the chunks are hashed on besides this one (none with one CPU). */
  get hashThreads() {
    return Math.max(this.hasher.width, 0);
  }

  /** Bytes the chunks hold: what is written. */
  get bytesTotal() {
    return mappedBytes(this.map);
  }

  /** Bytes that travel: the frames with a pack, else the chunks. */
  get bytesFetched() {
    return this.pack ? packedBytes(this.map) : mappedBytes(this.map);
  }

  get written() {
    return this.disk.written;
  }

  get zeroed() {
    return this.disk.zeroed;
  }

  /** Zero the gaps, then fetch, verify and write every chunk. After the first failure nothing more is written. */
  async write(progress: (bytes: number) => void) {
    for (const [from, to] of zeroRanges(this.map)) this.disk.zero(from, to);
    const chunks = this.map.chunks;
    let next = 0;
    let failure: unknown;
    const lane = async () => {
      while (failure === undefined && next < chunks.length) {
        const chunk = chunks[next++]!;
        try {
          await this.chunk(chunk);
          progress(this.fetched);
        } catch (e) {
          failure ??= e;
          this.abort.abort(e);
        }
      }
    };
    // Every lane settles before this returns: none writes to the disk after a failure is reported.
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, chunks.length) }, lane));
    if (failure !== undefined) throw failure;
  }

  /** Every chunk verified and on the disk: nothing that makes the disk bootable is written yet. */
  finish(): { chunks: number; bytes: number } {
    if (this.placed !== this.map.chunks.length) throw new ImageMismatch(`only ${this.placed} of the disk map's ${this.map.chunks.length} chunks were written`);
    this.disk.flush();
    return { chunks: this.placed, bytes: this.fetched };
  }

  /** Write the held-back first and last MiB: from now on the disk has the image's partition table. */
  commit() {
    this.disk.commit();
  }

  private async chunk(c: DiskMapChunk) {
    // With a pack every chunk has its frame (open() and the map's schema see to it).
    const frame = this.pack ? c.packed! : undefined;
    for (let attempt = 1; ; attempt++) {
      let bytes: ArrayBuffer;
      try {
        bytes = frame ? await this.range(this.pack!.url, frame, this.pack!.size, "pack") : await this.range(this.url, c, this.map.disk.size, "disk");
      } catch (e) {
        if (e instanceof RangeNotServed || attempt >= TRIES || this.abort.signal.aborted) throw e;
        log.warn(`bytes ${c.offset}+${c.length} of the disk: ${(e as Error).message}; trying again`);
        await Bun.sleep(attempt * 1000);
        continue;
      }
      const hashed = frame ? await this.hasher.unpack(bytes, frame.digest, c.length) : await this.hasher.digest(bytes);
      if (frame && hashed.hex !== frame.digest)
        throw new ImageMismatch(`the frame of the disk's bytes ${c.offset}+${c.length} (the pack's bytes ${frame.offset}+${frame.length}) has ${this.map.hash} ${hashed.hex}, not ${frame.digest} as its map says`);
      if (!frame && hashed.hex !== c.digest)
        throw new ImageMismatch(`the disk's bytes ${c.offset}+${c.length} have ${this.map.hash} ${hashed.hex}, not ${c.digest} as its map says`);
      if (this.abort.signal.aborted) return;
      this.disk.put(new Uint8Array(hashed.bytes), c.offset);
      this.placed++;
      this.fetched += c.length;
      return;
    }
  }

  /** Bytes `c` of the disk's (or its pack's) URL, whose whole is `size` bytes. */
  private async range(url: string, c: { offset: number; length: number }, size: number, what: "disk" | "pack"): Promise<ArrayBuffer> {
    const last = c.offset + c.length - 1;
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(CHUNK_TIMEOUT_MS)]);
    const res = await this.get(url, { range: `bytes=${c.offset}-${last}` }, signal);
    const said = res.headers.get("content-range");
    if (res.status !== 206 || said !== `bytes ${c.offset}-${last}/${size}`) {
      await res.body?.cancel();
      throw new RangeNotServed(`the ${what}'s URL answered a request for bytes ${c.offset}-${last} with ${res.status}${said ? ` (${said})` : ""}, not 206 with those bytes of ${size}`);
    }
    const bytes = await res.arrayBuffer();
    if (bytes.byteLength !== c.length) throw new Error(`got ${bytes.byteLength} of its ${c.length} bytes`);
    return bytes;
  }
}
