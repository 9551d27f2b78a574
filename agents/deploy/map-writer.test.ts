import { afterEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mapDisk } from "../../lib/disk-map.ts";
import { packDisk } from "../../lib/disk-pack.ts";
import { StoreClient } from "../../store/client/client.ts";
import { loadStoreConfig } from "../../store/config.ts";
import { serveStore } from "../../store/server.ts";
import { mappedBytes, packedBytes } from "../../wire/disk-map.ts";
import { ImageMismatch, RangeNotServed } from "../errors.ts";
import { DeployClient } from "./client.ts";
import { HOLD_BYTES } from "./held-disk.ts";
import { wipeEnds } from "./install.ts";
import { MapWriter } from "./map-writer.ts";

const MiB = 2 ** 20;
const TOKEN = "store-token-0123456789";
const dirs: string[] = [];
const servers: { stop(force: boolean): unknown }[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop(true);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * The error a promise rejects with (not `expect(p).rejects`: bun test can
 * miss a settlement that comes from a Worker's message, and chunks are
 * hashed on workers).
 */
const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * A 24 MiB disk image with data in both partition-table MiBs and a few
 * places between; its map with 1 MiB chunks. With `pack`, the data is a
 * repeated random KiB (it compresses, as a file system's does) and the map
 * names the frames of its pack (lib/disk-pack.ts).
 */
async function setup(o: { pack?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "ooo-map-writer-"));
  dirs.push(dir);
  const kib = randomBytes(1024);
  const data = (n: number) => (o.pack ? Buffer.concat(Array.from({ length: Math.ceil(n / 1024) }, () => kib)).subarray(0, n) : randomBytes(n));
  const img = Buffer.alloc(24 * MiB);
  data(4096).copy(img, 0);
  data(2.5 * MiB).copy(img, 3 * MiB + 1000);
  data(64 * 1024).copy(img, 10 * MiB);
  img.write("x", 17 * MiB + 70_000);
  data(16 * 1024).copy(img, img.length - 16 * 1024);
  const file = join(dir, "image.raw");
  writeFileSync(file, img);
  let map = mapDisk(file, { size: img.length, sha256: sha256(img) }, { chunkBytes: MiB });
  const packFile = join(dir, "image.disk-pack");
  if (o.pack) map = await packDisk(file, map, packFile);
  const pack = o.pack ? readFileSync(packFile) : undefined;
  const mapText = Buffer.from(JSON.stringify(map));
  // The disk it goes to held something else: no byte of it is zero.
  const diskFile = join(dir, "disk.raw");
  writeFileSync(diskFile, Buffer.alloc(32 * MiB, 0xa5));
  return { img, file, map, mapText, diskFile, pack, packFile };
}

/**
 * The store as the ramdisk sees it: the raw disk and its pack by Range (206
 * with its Content-Range), the map whole, all behind X-Auth-Token. `lie`
 * changes one byte of what it serves there (of the pack with `liePack`);
 * `ranges: false` ignores Range.
 */
function store(s: Awaited<ReturnType<typeof setup>>, o: { lie?: number; liePack?: number; ranges?: boolean } = {}) {
  const seen = { requests: 0, bytes: 0, inFlight: 0, maxInFlight: 0, disk: 0 };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (req.headers.get("x-auth-token") !== TOKEN) return new Response("unauthorized", { status: 401 });
      const path = new URL(req.url).pathname;
      if (path === "/map") return new Response(s.mapText);
      const [whole, lie] = path === "/disk" ? [s.img, o.lie] : path === "/pack" && s.pack ? [s.pack, o.liePack] : [];
      if (!whole) return new Response("not found", { status: 404 });
      seen.requests++;
      if (path === "/disk") seen.disk++;
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("range") ?? "");
      if (!m || o.ranges === false) return new Response(whole);
      const [a, b] = [Number(m[1]), Number(m[2])];
      seen.inFlight++;
      seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
      await Bun.sleep(20);
      seen.inFlight--;
      const body = Buffer.from(whole.subarray(a, b + 1));
      if (lie !== undefined && lie >= a && lie <= b) body[lie - a]! ^= 0xff;
      seen.bytes += body.length;
      return new Response(body, { status: 206, headers: { "content-range": `bytes ${a}-${b}/${whole.length}` } });
    },
  });
  servers.push(server);
  const base = `http://127.0.0.1:${server.port}`;
  const client = new DeployClient(`${base}/md`);
  const get = (url: string, headers: Record<string, string>, signal: AbortSignal) => client.download(url, TOKEN, signal, { headers });
  const image = {
    name: "node",
    digest: `sha256:${"d".repeat(64)}`,
    disk: { url: `${base}/disk`, sha256: sha256(s.img), size: s.img.length },
    map: {
      url: `${base}/map`,
      sha256: sha256(s.mapText),
      size: s.mapText.length,
      ...(s.pack ? { pack: { url: `${base}/pack`, sha256: sha256(s.pack), size: s.pack.length } } : {}),
    },
  };
  return { seen, get, image };
}

/** The disk's first MiB as the ramdisk wiped it: no partition table, nothing boots. */
const unbootable = (file: string) => readFileSync(file).subarray(0, HOLD_BYTES).equals(Buffer.alloc(HOLD_BYTES));

/**
 * A write from a store that lies (store()'s options): it fails with
 * ImageMismatch, nothing counts as written, and the disk is left without a
 * partition table. Returns the error for its message.
 */
async function refusedWrite(s: Awaited<ReturnType<typeof setup>>, o: Parameters<typeof store>[1]): Promise<Error> {
  const { get, image } = store(s, o);
  const fd = openSync(s.diskFile, "r+");
  try {
    const target = { fd, kind: "file" as const };
    wipeEnds(target);
    const writer = await MapWriter.open(get, image, target);
    const e = await rejection(writer.write(() => {}));
    expect(e).toBeInstanceOf(ImageMismatch);
    expect(() => writer.finish()).toThrow(ImageMismatch);
    expect(unbootable(s.diskFile)).toBe(true);
    return e as Error;
  } finally {
    closeSync(fd);
  }
}

describe("writing a disk by its map", () => {
  test("only the chunks travel, several at once; the disk ends up equal to the image; the partition tables come last", async () => {
    const s = await setup();
    const { seen, get, image } = store(s);
    const fd = openSync(s.diskFile, "r+");
    try {
      const target = { fd, kind: "file" as const };
      wipeEnds(target);
      const writer = await MapWriter.open(get, image, target);
      const reported: number[] = [];
      await writer.write((n) => reported.push(n));
      expect(writer.finish()).toEqual({ chunks: s.map.chunks.length, bytes: mappedBytes(s.map) });
      expect(unbootable(s.diskFile)).toBe(true);
      writer.commit();
      const disk = readFileSync(s.diskFile);
      expect(disk.subarray(0, s.img.length).equals(s.img)).toBe(true);
      expect(disk.subarray(s.img.length, 31 * MiB).every((b) => b === 0xa5)).toBe(true);
      // One request per chunk, the chunks' bytes and no more, up to 4 at once.
      expect(seen.requests).toBe(s.map.chunks.length);
      expect(seen.bytes).toBe(mappedBytes(s.map));
      expect(seen.bytes).toBeLessThan(s.img.length / 3);
      expect(seen.maxInFlight).toBeGreaterThan(1);
      expect(reported.at(-1)).toBe(mappedBytes(s.map));
    } finally {
      closeSync(fd);
    }
  });

  test("from ooo's own store: the raw disk, its map and its pack as blobs, a read token, Range on the pack's blob", async () => {
    const s = await setup({ pack: true });
    const dir = mkdtempSync(join(tmpdir(), "ooo-map-store-"));
    dirs.push(dir);
    const write = "write-token-0123456789abcdef";
    const running = await serveStore(loadStoreConfig({ flags: { dir, listen: "127.0.0.1:0" }, env: { OOO_STORE_WRITE_TOKEN: write, OOO_STORE_READ_TOKEN: TOKEN } }));
    servers.push({ stop: () => running.stop() });
    const publisher = new StoreClient({ url: running.url, token: write });
    const disk = { sha256: sha256(s.img), size: s.img.length };
    await publisher.putBlob(`sha256:${disk.sha256}`, s.file);
    await publisher.putBlob(`sha256:${sha256(s.mapText)}`, new Uint8Array(s.mapText));
    await publisher.putBlob(`sha256:${sha256(s.pack!)}`, s.packFile);
    const client = new DeployClient(`${running.url}/md`);
    const get = (url: string, headers: Record<string, string>, signal: AbortSignal) => client.download(url, TOKEN, signal, { headers });
    const blob = (hex: string) => `${running.url}/v2/ooo/blobs/sha256:${hex}`;
    const image = {
      name: "node",
      digest: `sha256:${"d".repeat(64)}`,
      disk: { url: blob(disk.sha256), ...disk },
      map: {
        url: blob(sha256(s.mapText)),
        sha256: sha256(s.mapText),
        size: s.mapText.length,
        pack: { url: blob(sha256(s.pack!)), sha256: sha256(s.pack!), size: s.pack!.length },
      },
    };
    const fd = openSync(s.diskFile, "r+");
    try {
      const writer = await MapWriter.open(get, image, { fd, kind: "file" });
      expect(writer.pack).toBeDefined();
      await writer.write(() => {});
      writer.finish();
      writer.commit();
      expect(readFileSync(s.diskFile).subarray(0, s.img.length).equals(s.img)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  test("with the pack, only the chunks' frames travel, never the disk's bytes; the disk ends up equal to the image", async () => {
    const s = await setup({ pack: true });
    const { seen, get, image } = store(s);
    const fd = openSync(s.diskFile, "r+");
    try {
      const target = { fd, kind: "file" as const };
      wipeEnds(target);
      const writer = await MapWriter.open(get, image, target);
      expect(writer.bytesFetched).toBe(packedBytes(s.map));
      const reported: number[] = [];
      await writer.write((n) => reported.push(n));
      expect(writer.finish()).toEqual({ chunks: s.map.chunks.length, bytes: mappedBytes(s.map) });
      expect(unbootable(s.diskFile)).toBe(true);
      writer.commit();
      expect(readFileSync(s.diskFile).subarray(0, s.img.length).equals(s.img)).toBe(true);
      expect(seen.disk).toBe(0);
      expect(seen.requests).toBe(s.map.chunks.length);
      expect(seen.bytes).toBe(s.pack!.length);
      expect(seen.bytes).toBeLessThan(mappedBytes(s.map) / 10);
      expect(reported.at(-1)).toBe(mappedBytes(s.map));
    } finally {
      closeSync(fd);
    }
  });

  test("a frame that lies is refused before it is decompressed, and the disk is left without a partition table", async () => {
    const s = await setup({ pack: true });
    const third = s.map.chunks[2]!;
    const e = await refusedWrite(s, { liePack: third.packed!.offset + 7 });
    expect(e.message).toContain(`the frame of the disk's bytes ${third.offset}+${third.length} (the pack's bytes ${third.packed!.offset}+${third.packed!.length}) has sha512-256`);
  });

  test("a pack the map has no frames for, or of another size than its frames, is refused before anything is written", async () => {
    const packed = await setup({ pack: true });
    const plain = await setup();
    const { get, image } = store(plain);
    const fd = openSync(plain.diskFile, "r+");
    try {
      const target = { fd, kind: "file" as const };
      const noFrames = await rejection(MapWriter.open(get, { ...image, map: { ...image.map, pack: { url: image.map.url, sha256: "0".repeat(64), size: 100 } } }, target));
      expect(noFrames).toBeInstanceOf(ImageMismatch);
      expect((noFrames as Error).message).toContain("but the disk map has no frames");
      const p = store(packed);
      const wrongSize = await rejection(MapWriter.open(p.get, { ...p.image, map: { ...p.image.map, pack: { ...p.image.map.pack!, size: packed.pack!.length + 1 } } }, target));
      expect(wrongSize).toBeInstanceOf(ImageMismatch);
      expect((wrongSize as Error).message).toContain(`the disk map's frames make ${packed.pack!.length} bytes, but the disk pack is ${packed.pack!.length + 1} bytes`);
      expect(readFileSync(plain.diskFile).every((b) => b === 0xa5)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  test("a chunk that lies is refused, and the disk is left without a partition table", async () => {
    const s = await setup();
    const e = await refusedWrite(s, { lie: 3 * MiB + 5000 });
    expect(e.message).toContain(`the disk's bytes ${3 * MiB}+${MiB} have sha512-256`);
    expect(readFileSync(s.diskFile).subarray(31 * MiB).equals(Buffer.alloc(MiB))).toBe(true);
  });

  test("a map that is not the one named, or not of the named disk, is refused before anything is written", async () => {
    const s = await setup();
    const { get, image } = store(s);
    const fd = openSync(s.diskFile, "r+");
    try {
      const target = { fd, kind: "file" as const };
      const wrongSum = await rejection(MapWriter.open(get, { ...image, map: { ...image.map, sha256: "0".repeat(64) } }, target));
      expect(wrongSum).toBeInstanceOf(ImageMismatch);
      expect((wrongSum as Error).message).toContain("as the deployer said");
      const otherDisk = await rejection(MapWriter.open(get, { ...image, disk: { ...image.disk, sha256: "e".repeat(64) } }, target));
      expect(otherDisk).toBeInstanceOf(ImageMismatch);
      expect((otherDisk as Error).message).toContain("not of node's");
      expect(readFileSync(s.diskFile).every((b) => b === 0xa5)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  test("a store that does not serve byte ranges is named as such", async () => {
    const s = await setup();
    const { get, image } = store(s, { ranges: false });
    const fd = openSync(s.diskFile, "r+");
    try {
      const writer = await MapWriter.open(get, image, { fd, kind: "file" });
      const e = await rejection(writer.write(() => {}));
      expect(e).toBeInstanceOf(RangeNotServed);
      expect((e as Error).message).toContain("with 200, not 206");
    } finally {
      closeSync(fd);
    }
  });
});
