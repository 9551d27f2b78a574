import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { capture, run } from "../../lib/run.ts";
import { requireCommand } from "../../test/support/require.ts";
import { BOOT_FILES, chooseSlot, DISK, grubConfig, initialEnv, parseEnv, renderEnv, SLOT_PARTITIONS, type BootEnv, type SlotChoice } from "../../wire/boot.ts";
import { writePartitionTable } from "./gpt.ts";
import { partition, planDisk } from "./layout.ts";
import { mkfsFor, writeInto } from "./mkfs.ts";

/**
 * GRUB's own script interpreter (grub-emu, GRUB built to run as a program)
 * runs the grub.cfg the builder installs on a disk the builder lays out,
 * over a table of environment blocks: the slot it boots, the partition it
 * boots it from and the block it leaves behind (save_env writes the disk)
 * must be what wire/boot.ts's chooseSlot says. grub-emu has no `linux`
 * command, so it stops short of booting; everything before that is real.
 */
const V1 = `sha256:${"1".repeat(64)}`;
const V2 = `sha256:${"2".repeat(64)}`;

type Row = [string, Record<string, string> | "empty block", Pick<SlotChoice, "slot" | "trial"> & { fallback?: true }];
const first = Object.fromEntries(initialEnv(V1));
const rows: Row[] = [
  ["a new disk: slot A, good", first, { slot: "A", trial: false }],
  ["B armed for a trial: B on trial, its try used up", { ...first, ORDER: "B A", B_TRY: "1", B_DIGEST: V2 }, { slot: "B", trial: true }],
  ["B's try used up, not marked good: back to A", { ...first, ORDER: "B A", B_TRY: "0", B_DIGEST: V2 }, { slot: "A", trial: false }],
  ["B marked good, first in order", { ...first, ORDER: "B A", A_OK: "1", B_OK: "1", B_DIGEST: V2 }, { slot: "B", trial: false }],
  ["good beats on trial only by order: A good first, B on trial second", { ...first, ORDER: "A B", B_TRY: "1" }, { slot: "A", trial: false }],
  ["a good slot ignores its own try flag", { ...first, ORDER: "B A", B_OK: "1", B_TRY: "1" }, { slot: "B", trial: false }],
  ["A on trial (rolled back from B): A on trial", { ORDER: "A B", A_OK: "0", A_TRY: "1", B_OK: "0", B_TRY: "0" }, { slot: "A", trial: true }],
  ["nothing bootable: A as a last resort", { ORDER: "A B", A_OK: "0", A_TRY: "0", B_OK: "0", B_TRY: "0" }, { slot: "A", trial: false, fallback: true }],
  ["a slot left out of ORDER is never chosen", { ORDER: "A", A_OK: "0", A_TRY: "0", B_OK: "1", B_TRY: "0" }, { slot: "A", trial: false, fallback: true }],
  ["an empty ORDER: last resort", { ORDER: "", A_OK: "1", A_TRY: "0", B_OK: "1", B_TRY: "0" }, { slot: "A", trial: false, fallback: true }],
  ["names that are no slot are skipped", { ORDER: "C B A", A_OK: "0", A_TRY: "0", B_OK: "0", B_TRY: "1" }, { slot: "B", trial: true }],
  ["only \"1\" counts as set", { ORDER: "B A", A_OK: "1", A_TRY: "0", B_OK: "yes", B_TRY: "true" }, { slot: "A", trial: false }],
  ["keys the block lacks take GRUB's defaults", { ORDER: "B A", B_TRY: "1" }, { slot: "B", trial: true }],
  ["an empty block: the defaults, slot A", "empty block", { slot: "A", trial: false }],
];

describe("grub.cfg in GRUB (grub-emu) chooses the slot wire/boot.ts's chooseSlot does", () => {
  requireCommand("grub-emu", "sfdisk", "mkfs.vfat", "mcopy", "mtype");
  const dir = mkdtempSync(join(tmpdir(), "ooo-grub-emu-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const disk = join(dir, "disk.raw");
  const layout = planDisk(1 << 20);
  const boot = partition(layout, "boot");
  const ready = (async () => {
    await run("truncate", ["-s", String(layout.size), disk], { echo: false });
    await writePartitionTable(disk, layout, "grub-emu-test");
    writeFileSync(join(dir, "device.map"), `(hd0) ${disk}\n`);
  })();

  async function bootWith(env: BootEnv) {
    const tree = join(dir, "tree");
    rmSync(tree, { recursive: true, force: true });
    mkdirSync(join(tree, BOOT_FILES.grubDir), { recursive: true });
    writeFileSync(join(tree, BOOT_FILES.grubConfig), grubConfig("console=ttyS0"));
    writeFileSync(join(tree, BOOT_FILES.env), renderEnv(env), "latin1");
    const fs = join(dir, "boot.fs");
    await mkfsFor(DISK.boot, { file: fs, size: boot.size, uuid: "0000-0002", tree, sourceDateEpoch: 0 });
    await writeInto(disk, fs, boot.offset);
    // At the shell GRUB drops to once `boot` fails, `reboot` ends the emulator.
    const grub = Bun.spawn(["grub-emu", "-m", join(dir, "device.map"), "-r", `hd0,gpt${DISK.boot.number}`, "-d", `/${BOOT_FILES.grubDir}`], {
      stdin: new TextEncoder().encode("reboot\n"),
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => grub.kill(), 10_000);
    const [out, err] = await Promise.all([new Response(grub.stdout).text(), new Response(grub.stderr).text(), grub.exited]);
    clearTimeout(timer);
    const console = out + err;
    const booted = /ooo: booting slot (\w+) from \(hd0,gpt(\d+)\) trial=(\d)/.exec(console);
    if (!booted) throw new Error(`GRUB chose no slot; it said:\n${console}`);
    const block = await capture("mtype", ["-i", `${disk}@@${boot.offset}`, `::/${BOOT_FILES.env}`], { env: { MTOOLS_SKIP_CHECK: "1" } });
    return {
      slot: booted[1],
      partition: Number(booted[2]),
      trial: booted[3] === "1",
      fallback: console.includes("ooo: no bootable slot"),
      after: parseEnv(block),
    };
  }

  test.each(rows)("%s", async (_, vars, expected) => {
    await ready;
    const env: BootEnv = new Map(vars === "empty block" ? [] : Object.entries(vars));
    const mine = new Map(env);
    const choice = chooseSlot(mine);
    expect(choice).toEqual(expected);
    const grub = await bootWith(env);
    expect({ slot: grub.slot, trial: grub.trial, fallback: grub.fallback }).toEqual({ slot: choice.slot, trial: choice.trial, fallback: choice.fallback === true });
    expect(grub.partition).toBe(SLOT_PARTITIONS[choice.slot].number);
    expect(grub.after).toEqual(mine);
  });
});
