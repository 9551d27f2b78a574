import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { grubChoice, parseEnv, renderEnv } from "./bootenv.ts";
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

describe("grubChoice: the slot grub.cfg boots", () => {
  const env = (vars: string) => parseEnv(renderEnv(new Map(vars.split(" ").map((kv) => kv.split("=") as [string, string]))));
  test("a slot on trial first in ORDER is chosen and its try used up", () => {
    const e = env("A_OK=1 A_TRY=0 B_OK=0 B_TRY=1");
    e.set("ORDER", "B A");
    expect(grubChoice(e)).toEqual({ slot: "B", trial: true });
    expect(e.get("B_TRY")).toBe("0");
    // Used up: the next boot falls back to A, as after GRUB's save_env.
    expect(grubChoice(e)).toEqual({ slot: "A", trial: false });
  });
  test("a good slot boots without changing the block", () => {
    const e = env("A_OK=0 A_TRY=0 B_OK=1 B_TRY=0");
    e.set("ORDER", "A B");
    expect(grubChoice(e)).toEqual({ slot: "B", trial: false });
    expect(e.get("B_TRY")).toBe("0");
  });
  test("nothing bootable: no choice", () => {
    const e = env("A_OK=0 A_TRY=0 B_OK=0 B_TRY=0");
    expect(grubChoice(e)).toBeUndefined();
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
