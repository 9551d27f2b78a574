import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { capture } from "../../lib/run.ts";
import { requireCommand } from "../../test/support/require.ts";
import { DISK } from "../../wire/boot.ts";
import { mkfsFor } from "./mkfs.ts";

/**
 * The boot partition's FAT32, made from a tree with mkfs.vfat and mtools:
 * the same tree gives the same bytes whatever order its files were made in
 * and whatever the clock and time zone say; every entry carries
 * SOURCE_DATE_EPOCH; mtools reads back what went in.
 */
const dir = mkdtempSync(join(tmpdir(), "ooo-fat-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FILES: [string, string][] = [
  ["EFI/BOOT/BOOTX64.EFI", "MZ not really"],
  ["grub/grub.cfg", "set timeout=0\n"],
  ["grub/grubenv", "#".repeat(1024)],
  ["ooo/slot-A.rec", "\0".repeat(8192)],
  ["ooo/slot-B.rec", "\0".repeat(8192)],
];
const EPOCH = Date.UTC(2024, 0, 1) / 1000;

async function fat(name: string, order: [string, string][]) {
  const tree = join(dir, `${name}-tree`);
  for (const [path, content] of order) {
    mkdirSync(join(tree, path, ".."), { recursive: true });
    writeFileSync(join(tree, path), content);
  }
  const file = join(dir, `${name}.fat`);
  await mkfsFor(DISK.boot, { file, size: DISK.boot.size, uuid: "1A2B-3C4D", tree, sourceDateEpoch: EPOCH });
  return file;
}
const mtools = (cmd: string, args: string[]) => capture(cmd, args, { cleanEnv: true, env: { PATH: process.env.PATH, TZ: "UTC", MTOOLS_SKIP_CHECK: "1" } });

describe("the boot partition's FAT", () => {
  requireCommand("mkfs.vfat", "mcopy", "mdir", "mtype");

  test("same tree, same bytes: made in another order, an hour later, in another time zone", async () => {
    const one = await fat("one", FILES);
    const zone = process.env.TZ;
    process.env.TZ = "Pacific/Kiritimati";
    try {
      // The clock: FAT's times have a 2-second grain.
      await Bun.sleep(2100);
      const two = await fat("two", [...FILES].reverse());
      expect(Bun.hash(readFileSync(two))).toBe(Bun.hash(readFileSync(one)));
    } finally {
      process.env.TZ = zone;
    }
  });

  test("FAT32 with the volume ID given; every entry dated SOURCE_DATE_EPOCH; the files as they went in", async () => {
    const file = join(dir, "one.fat");
    const bytes = readFileSync(file);
    expect(bytes.subarray(0x52, 0x5a).toString()).toBe("FAT32   ");
    expect(bytes.readUInt32LE(0x43).toString(16)).toBe("1a2b3c4d");
    const listing = await mtools("mdir", ["-/", "-a", "-i", file, "::/"]);
    expect(listing).toContain("Volume Serial Number is 1A2B-3C4D");
    const dated = listing.split("\n").filter((l) => /\d{4}-\d\d-\d\d/.test(l));
    expect(dated.length).toBe(4 + 2 * 4 + FILES.length); // the folders EFI EFI/BOOT grub ooo, their . and .., the files
    for (const line of dated) expect(line).toContain("2024-01-01   0:00");
    for (const [path, content] of FILES) expect(await mtools("mtype", ["-i", file, `::/${path}`])).toBe(content);
  });
});
