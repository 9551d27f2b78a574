import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { capture, run } from "../lib/run.ts";
import { requireCommand } from "../test/support/require.ts";
import {
  bootedSlot,
  chooseSlot,
  CMDLINE_KEYS,
  DISK,
  ENV_ATOMIC_BYTES,
  ENV_BLOCK_SIZE,
  initialEnv,
  parseEnv,
  PARTITIONS,
  renderEnv,
  setOrder,
  setSlot,
  SLOT_PARTITIONS,
  slotCmdline,
  slotState,
  SLOTS,
  type BootEnv,
} from "./boot.ts";

const V1 = `sha256:${"1".repeat(64)}`;
const V2 = `sha256:${"2".repeat(64)}`;

describe("the disk contract", () => {
  test("partitions are numbered 1…n in disk order (sfdisk numbers them so, GRUB names them so)", () => {
    expect(PARTITIONS.map((p) => p.number)).toEqual(PARTITIONS.map((_, i) => i + 1));
  });
  test("GPT names are unique; every filesystem has a label", () => {
    expect(new Set(PARTITIONS.map((p) => p.name)).size).toBe(PARTITIONS.length);
    for (const p of PARTITIONS) if (p.fs) expect(p.label).toBeTruthy();
  });
  test("the state partition is last and takes the rest, so a bigger disk grows it", () => {
    expect(PARTITIONS.at(-1)).toMatchObject({ role: "state", size: "rest" });
    expect(PARTITIONS.filter((p) => p.size === "rest")).toHaveLength(1);
  });
  test("every slot has its own partition", () => {
    expect(new Set(SLOTS.map((s) => SLOT_PARTITIONS[s].number)).size).toBe(SLOTS.length);
  });
});

describe("what elements' shell scripts read of the contract", () => {
  const element = (path: string) => readFileSync(join(import.meta.dir, "../elements", path), "utf8");
  test("state-layout's initramfs finds the state partition by its GPT name", () => {
    expect(element("state-layout/state-layout-files/init-bottom-ooo-state")).toContain(`PARTNAME=${DISK.state.name}"`);
  });
  test("state-layout's ready report reads the slot and the trial flag from the kernel command line", () => {
    const script = element("state-layout/state-layout-files/ooo-node-report");
    expect(script).toContain(`${CMDLINE_KEYS.slot}=*) slot=\${word#${CMDLINE_KEYS.slot}=}`);
    expect(script).toContain(`${CMDLINE_KEYS.trial}=*) trial=\${word#${CMDLINE_KEYS.trial}=}`);
  });
  test("ooo-takeover's trial watchdog runs on a trial boot only", () => {
    expect(element("ooo-takeover/install.d/60-ooo-takeover")).toContain(`ConditionKernelCommandLine=${CMDLINE_KEYS.trial}=1`);
  });
});

describe("GRUB's environment block", () => {
  const dir = mkdtempSync(join(tmpdir(), "ooo-grubenv-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = (vars: Record<string, string>): BootEnv => new Map(Object.entries({ ...Object.fromEntries(initialEnv(V1)), ...vars }));

  test("a new disk's block: slot A good and holding the image, B empty, in GRUB's layout", () => {
    const text = renderEnv(initialEnv(V1));
    expect(text.length).toBe(ENV_BLOCK_SIZE);
    expect(text).toStartWith(`# GRUB Environment Block\nORDER=A B\nA_OK=1\nA_TRY=0\nB_OK=0\nB_TRY=0\nA_DIGEST=${V1}\n#`);
    expect(text).toEndWith("#");
    expect(parseEnv(text)).toEqual(initialEnv(V1));
  });
  test("grub-editenv reads what we write, and we read what it writes", async () => {
    requireCommand("grub-editenv");
    const ours = join(dir, "ours");
    await Bun.write(ours, Buffer.from(renderEnv(env({ ORDER: "B A", B_TRY: "1", B_DIGEST: V2 })), "latin1"));
    expect((await capture("grub-editenv", [ours, "list"])).split("\n").filter(Boolean)).toEqual([
      "ORDER=B A",
      "A_OK=1",
      "A_TRY=0",
      "B_OK=0",
      "B_TRY=1",
      `A_DIGEST=${V1}`,
      `B_DIGEST=${V2}`,
    ]);
    const theirs = join(dir, "theirs");
    await run("grub-editenv", [theirs, "create"], { echo: false });
    await run("grub-editenv", [theirs, "set", "ORDER=B A", "B_TRY=1", `A_DIGEST=${V1}`], { echo: false });
    expect(parseEnv(readFileSync(theirs, "latin1"))).toEqual(new Map([["ORDER", "B A"], ["B_TRY", "1"], ["A_DIGEST", V1]]));
  });
  test("an oversized block is refused", () => {
    expect(() => renderEnv(new Map([["X", "y".repeat(1100)]]))).toThrow(/too large/);
  });
  test("every block ooo writes changes only the first sector: a rewrite in place is all or nothing", () => {
    const full = env({ ORDER: "B A", A_OK: "1", B_OK: "1", A_TRY: "1", B_TRY: "1", B_DIGEST: V2, EXTRA_CMDLINE: "" });
    const blocks = [renderEnv(initialEnv(V1)), renderEnv(full), renderEnv(new Map())];
    for (const b of blocks) expect(b.slice(ENV_ATOMIC_BYTES)).toBe("#".repeat(ENV_BLOCK_SIZE - ENV_ATOMIC_BYTES));
    // What is left of the sector for EXTRA_CMDLINE, and past it a clear refusal:
    const room = ENV_ATOMIC_BYTES - renderEnv(full).indexOf("EXTRA_CMDLINE=\n") - "EXTRA_CMDLINE=\n".length;
    expect(room).toBeGreaterThan(250);
    expect(() => renderEnv(new Map([...full, ["EXTRA_CMDLINE", "z".repeat(room + 1)]]))).toThrow(/one sector/);
  });
  test("slot state: set and read back; ORDER puts a slot first", () => {
    const e = initialEnv(V1);
    setSlot(e, "B", { ok: false, try: true, digest: V2 });
    setOrder(e, "B");
    expect(slotState(e, "B")).toEqual({ ok: false, try: true, digest: V2 });
    expect(e.get("ORDER")).toBe("B A");
  });
  test("a key the block lacks reads as GRUB's default", () => {
    expect(slotState(new Map(), "A")).toEqual({ ok: true, try: false, digest: undefined });
    expect(slotState(new Map(), "B")).toEqual({ ok: false, try: false, digest: undefined });
  });
});

describe("chooseSlot (the rule grub.cfg follows: builder/disk/grub.test.ts runs both)", () => {
  test("a slot on trial first in ORDER is chosen and its try used up; the next boot falls back", () => {
    const e = new Map(Object.entries({ ORDER: "B A", A_OK: "1", A_TRY: "0", B_OK: "0", B_TRY: "1" }));
    expect(chooseSlot(e)).toEqual({ slot: "B", trial: true });
    expect(e.get("B_TRY")).toBe("0");
    expect(chooseSlot(e)).toEqual({ slot: "A", trial: false });
  });
  test("a good slot boots without changing the block", () => {
    const e = new Map(Object.entries({ ORDER: "A B", A_OK: "0", A_TRY: "0", B_OK: "1", B_TRY: "0" }));
    const before = new Map(e);
    expect(chooseSlot(e)).toEqual({ slot: "B", trial: false });
    expect(e).toEqual(before);
  });
  test("nothing bootable: the first slot as a last resort, said so", () => {
    expect(chooseSlot(new Map(Object.entries({ A_OK: "0", B_OK: "0" })))).toEqual({ slot: "A", trial: false, fallback: true });
  });
});

describe("the kernel arguments of a slot", () => {
  test("what GRUB (and kexec) give, and what the booted node reads back", () => {
    const line = slotCmdline({ partuuid: "1234-ab", slot: "B", trial: true });
    expect(line).toBe("root=PARTUUID=1234-ab ro ooo.slot=B ooo.trial=1");
    expect(bootedSlot(`BOOT_IMAGE=(hd0,gpt4)/vmlinuz ${line} console=ttyS0`)).toEqual({ slot: "B", trial: true, root: "PARTUUID=1234-ab", partuuid: "1234-ab" });
  });
  test("a command line without a slot or a PARTUUID root says so", () => {
    expect(bootedSlot("root=/dev/vda1 ro ooo.slot=C")).toEqual({ slot: undefined, trial: false, root: "/dev/vda1", partuuid: undefined });
  });
});
