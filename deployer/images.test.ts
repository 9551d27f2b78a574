import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withCrashableFs } from "../test/support/scratch-fs.ts";
import { noise, startStore, type TestStore } from "../test/support/store.ts";
import { ImageCache, type ResolvedImage } from "./images.ts";

/** The deployer's disk cache against a real store server: what it keeps must be the image, even after a power cut or a tampered file. */
let store: TestStore;
const data = Buffer.concat([noise(3 << 20, 7), Buffer.alloc(1 << 20), noise(1 << 20, 8)]);
const sha256 = createHash("sha256").update(data).digest("hex");
const image = { disk: { sha256, size: data.length }, digest: `sha256:${"0".repeat(64)}` } as ResolvedImage;

beforeAll(async () => {
  store = await startStore();
  await store.client.putBlob(`sha256:${sha256}`, data);
}, 30_000);
afterAll(() => store?.stop());

const hashOf = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("ImageCache", () => {
  test("a cached disk changed in place, its size and mtime put back, is not trusted: it is fetched again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-cache-"));
    try {
      const cache = new ImageCache(dir);
      const disk = await cache.ensure(store.reader, image);
      expect(hashOf(disk.path)).toBe(sha256);
      const before = statSync(disk.path, { bigint: true });
      const fd = openSync(disk.path, "r+");
      writeSync(fd, Buffer.from("tampered"), 0, 8, 4096);
      closeSync(fd);
      // As `touch -r` or `cp -p` would: to the nanosecond.
      expect(Bun.spawnSync(["touch", "-d", `@${before.mtimeNs / 1_000_000_000n}.${String(before.mtimeNs % 1_000_000_000n).padStart(9, "0")}`, disk.path]).exitCode).toBe(0);
      const after = statSync(disk.path, { bigint: true });
      expect([after.size, after.mtimeNs]).toEqual([before.size, before.mtimeNs]);
      expect(cache.has(image)).toBe(false);
      const again = await cache.ensure(store.reader, image);
      expect(hashOf(again.path)).toBe(sha256);
      expect(cache.has(image)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  test("a disk the cache returned survives a power cut, complete and still trusted", async () => {
    await withCrashableFs(async (fs) => {
      const disk = await new ImageCache(fs.dir).ensure(store.reader, image);
      await fs.crash();
      expect(hashOf(disk.path)).toBe(sha256);
      expect(new ImageCache(fs.dir).has(image)).toBe(true);
    });
  }, 60_000);

  test("a download that does not match its sha256 leaves nothing in the cache", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-cache-"));
    try {
      const wrong = { ...image, disk: { sha256, size: data.length + 1 } } as ResolvedImage;
      await expect(new ImageCache(dir).ensure(store.reader, wrong)).rejects.toThrow(/does not match|expected/);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
