import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { insideRoot, kexecCmdline } from "./kexec.ts";

describe("kexecCmdline: the command line GRUB would give the other slot", () => {
  const running = "BOOT_IMAGE=(hd0,gpt3)/vmlinuz root=PARTUUID=aaaa-1 ro ooo.slot=A ooo.trial=0 console=ttyS0 quiet";
  test("replaces root, slot and trial, drops BOOT_IMAGE, keeps the rest in order", () => {
    expect(kexecCmdline(running, { partuuid: "bbbb-2", slot: "B", trial: true })).toBe("root=PARTUUID=bbbb-2 ro ooo.slot=B ooo.trial=1 console=ttyS0 quiet");
  });
  test("adds what the running line lacks", () => {
    expect(kexecCmdline("root=/dev/vda3 ro", { partuuid: "c", slot: "A", trial: false })).toBe("root=PARTUUID=c ro ooo.slot=A ooo.trial=0");
  });
});

describe("insideRoot: a slot's files, symlinks followed inside the slot", () => {
  const root = mkdtempSync(join(tmpdir(), "ooo-kexec-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, "boot"));
  writeFileSync(join(root, "boot/vmlinuz-6.1"), "k");
  symlinkSync("boot/vmlinuz-6.1", join(root, "vmlinuz"));
  symlinkSync("/boot/vmlinuz-6.1", join(root, "absolute"));
  symlinkSync("../../../../etc/passwd", join(root, "escape"));
  symlinkSync("loop", join(root, "loop"));
  test("relative and absolute links resolve within the root", () => {
    expect(insideRoot(root, "vmlinuz")).toBe(join(root, "boot/vmlinuz-6.1"));
    expect(insideRoot(root, "absolute")).toBe(join(root, "boot/vmlinuz-6.1"));
  });
  test("a link that climbs out stays in the root", () => {
    expect(insideRoot(root, "escape")).toBe(join(root, "etc/passwd"));
  });
  test("a link loop is an error", () => {
    expect(() => insideRoot(root, "loop")).toThrow(/too many symbolic links/);
  });
});
