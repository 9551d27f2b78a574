import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireRoot } from "../test/support/require.ts";
import { isMountPoint, mountFs, remount, syncFilesystemOf, unmount } from "./mounts.ts";

/** The super options and per-mount options of the mount on `dir`, from mountinfo. */
function optionsOf(dir: string): string[] {
  const line = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .find((l) => l.split(" ")[4] === dir);
  if (!line) return [];
  const [before, after] = line.split(" - ");
  return [...before!.split(" ")[5]!.split(","), ...after!.split(" ")[2]!.split(",")];
}

describe("mounts by syscall", () => {
  let dir: string;
  beforeEach(() => {
    requireRoot();
    dir = join(mkdtempSync(join(tmpdir(), "ooo-mounts-")), "m");
    mkdirSync(dir);
  });
  afterEach(() => {
    if (isMountPoint(dir)) unmount(dir);
    rmSync(join(dir, ".."), { recursive: true, force: true });
  });

  test("mount read-only, remount read-write with sync and back, sync, unmount", () => {
    mountFs("ooo-test", dir, "tmpfs", { readOnly: true });
    expect(isMountPoint(dir)).toBe(true);
    expect(optionsOf(dir)).toContain("ro");
    expect(() => writeFileSync(join(dir, "f"), "x")).toThrow(/EROFS|read-only/);

    remount(dir, { sync: true });
    expect(optionsOf(dir)).toContain("rw");
    expect(optionsOf(dir)).toContain("sync");
    writeFileSync(join(dir, "f"), "x");
    syncFilesystemOf(join(dir, "f"));

    remount(dir, { readOnly: true });
    expect(optionsOf(dir)).toContain("ro");
    expect(readFileSync(join(dir, "f"), "utf8")).toBe("x");

    unmount(dir);
    expect(isMountPoint(dir)).toBe(false);
  });

  test("failures name the device, the folder and the errno", () => {
    expect(() => mountFs("/dev/ooo-no-such-disk", dir, "ext4")).toThrow(/mounting \/dev\/ooo-no-such-disk \(ext4\) on .*\/m failed: ENOENT \(errno 2\)/);
    expect(() => remount(dir, { readOnly: true })).toThrow(/remounting .*\/m read-only failed: EINVAL/);
    expect(() => unmount(dir)).toThrow(/unmounting .*\/m failed: EINVAL/);
  });
});
