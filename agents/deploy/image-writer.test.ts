import { afterEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageMismatch } from "../errors.ts";
import { HOLD_BYTES } from "./held-disk.ts";
import { ImageWriter } from "./image-writer.ts";
import { wipeEnds } from "./install.ts";

const MiB = 2 ** 20;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** An image of 24 MiB: data in the first and last MiB (the partition tables), some blocks of data between, zeros elsewhere. */
function image(): Buffer {
  const img = Buffer.alloc(24 * MiB);
  randomBytes(4096).copy(img, 0);
  randomBytes(200 * 1024).copy(img, 3 * MiB + 1000);
  randomBytes(64 * 1024).copy(img, 10 * MiB);
  img.write("x", 17 * MiB + 70_000);
  randomBytes(16 * 1024).copy(img, img.length - 16 * 1024);
  return img;
}

/** A disk that held something else: no byte of it is zero. */
function oldDisk(size: number): { file: string; fd: number } {
  const dir = mkdtempSync(join(tmpdir(), "ooo-writer-test-"));
  dirs.push(dir);
  const file = join(dir, "disk.raw");
  writeFileSync(file, Buffer.alloc(size, 0xa5));
  return { file, fd: openSync(file, "r+") };
}

/** The image, pushed in pieces of odd sizes, as a network stream delivers it. */
function pushAll(writer: ImageWriter, img: Buffer) {
  for (let at = 0, n = 1; at < img.length; at += n, n = (n * 7919 + 12345) % (700 * 1024) || 1) writer.push(img.subarray(at, Math.min(img.length, at + n)));
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("the image writer", () => {
  test("the disk ends up equal to the image; zeros are holes, not writes; the partition tables come last", () => {
    const img = image();
    const { file, fd } = oldDisk(32 * MiB);
    try {
      wipeEnds({ fd, kind: "file" });
      const writer = new ImageWriter({ fd, kind: "file" }, { size: img.length, sha256: sha256(img) });
      pushAll(writer, img);
      expect(writer.finish()).toEqual({ size: img.length, sha256: sha256(img) });
      // Verified, not yet bootable: the first MiB is still the wiped one.
      expect(readFileSync(file).subarray(0, HOLD_BYTES).equals(Buffer.alloc(HOLD_BYTES))).toBe(true);
      writer.commit();
      const disk = readFileSync(file);
      expect(disk.subarray(0, img.length).equals(img)).toBe(true);
      // Beyond the image: the old bytes, but for the wiped last MiB.
      expect(disk.subarray(img.length, 31 * MiB).every((b) => b === 0xa5)).toBe(true);
      expect(disk.subarray(31 * MiB).every((b) => b === 0)).toBe(true);
      // Only blocks with data were written (the 2 MiB held back, ~400 KiB between).
      expect(writer.written).toBeLessThan(MiB);
      expect(writer.zeroed + writer.written + 2 * HOLD_BYTES).toBe(img.length);
      expect(fstatSync(fd).blocks * 512).toBeLessThan(32 * MiB - 20 * MiB);
    } finally {
      closeSync(fd);
    }
  });

  test("a wrong digest is found before the disk gets a partition table", () => {
    const img = image();
    const { file, fd } = oldDisk(32 * MiB);
    try {
      wipeEnds({ fd, kind: "file" });
      const writer = new ImageWriter({ fd, kind: "file" }, { size: img.length, sha256: "0".repeat(64) });
      pushAll(writer, img);
      expect(() => writer.finish()).toThrow(ImageMismatch);
      expect(readFileSync(file).subarray(0, HOLD_BYTES).equals(Buffer.alloc(HOLD_BYTES))).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  test("too short, or too long, is refused", () => {
    const img = image();
    const { fd } = oldDisk(32 * MiB);
    try {
      const short = new ImageWriter({ fd, kind: "file" }, { size: img.length, sha256: sha256(img) });
      short.push(img.subarray(0, img.length - 1));
      expect(() => short.finish()).toThrow("ended after");
      const long = new ImageWriter({ fd, kind: "file" }, { size: img.length - 1, sha256: sha256(img) });
      expect(() => pushAll(long, img)).toThrow("longer than");
    } finally {
      closeSync(fd);
    }
  });
});
