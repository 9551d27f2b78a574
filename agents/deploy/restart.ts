import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { GptPartition } from "../../lib/gpt-grow.ts";
import { isMountPoint, mountFs, unmount } from "../mounts.ts";
import { grubChoice, parseEnv } from "../takeover/bootenv.ts";
import { insideRoot, loadKexecKernel } from "../takeover/kexec.ts";
import { grubLinuxArgs } from "./grub-linux.ts";

/**
 * Starting the installed root without a second firmware boot: the kernel
 * and initrd GRUB would boot, loaded with kexec_file_load (the takeover's
 * kexec.ts) and the command line GRUB would give them, read from the
 * disk's own boot partition.
 *
 * The disk's names below (partition names, files on the boot partition and
 * in a slot) are the golden disk's layout, builder/disk/layout.ts and
 * grub.ts; they become wire/boot.ts's DISK, BOOT_FILES and SLOT_FILES.
 */
const BOOT_PARTITION = "ooo-boot";
const SLOT_PARTITION = { A: "ooo-root-a", B: "ooo-root-b" } as const;
const GRUB_CFG = "grub/grub.cfg";
const GRUB_ENV = "grub/grubenv";
const KERNEL = "vmlinuz";
const INITRD = "initrd.img";

const MOUNTS = "/run/ooo-deploy";

export type Prepared = { loaded: true; slot: string; cmdline: string } | { loaded: false; reason: string };

/** Load the installed root's kernel for kexec. Never throws: a reason says why not, and the deployer boots the disk instead. */
export async function loadInstalledRoot(parts: GptPartition[]): Promise<Prepared> {
  const mounted: string[] = [];
  const mount = async (part: GptPartition, at: string) => {
    await waitForNode(part.node);
    mkdirSync(at, { recursive: true });
    mountFs(part.node, at, "ext4", { readOnly: true });
    mounted.push(at);
  };
  try {
    const byName = (name: string) => parts.find((p) => p.name === name);
    const boot = byName(BOOT_PARTITION);
    if (!boot) return { loaded: false, reason: `the disk has no ${BOOT_PARTITION} partition` };
    await mount(boot, join(MOUNTS, "boot"));
    const env = parseEnv(readFileSync(join(MOUNTS, "boot", GRUB_ENV), "latin1"));
    const choice = grubChoice(env);
    // A fresh disk boots slot A for good; a trial would need its try used up on the disk first.
    if (!choice || choice.trial) return { loaded: false, reason: `the boot environment picks ${choice ? `slot ${choice.slot} on trial` : "no slot"}` };
    const slot = byName(SLOT_PARTITION[choice.slot]);
    if (!slot?.uuid) return { loaded: false, reason: `the disk has no ${SLOT_PARTITION[choice.slot]} partition with a UUID` };
    const cmdline = grubLinuxArgs(readFileSync(join(MOUNTS, "boot", GRUB_CFG), "utf8"), {
      partuuid: slot.uuid.toLowerCase(),
      slot: choice.slot,
      trial: "0",
      EXTRA_CMDLINE: env.get("EXTRA_CMDLINE") ?? "",
    });
    if (!cmdline) return { loaded: false, reason: `${GRUB_CFG} has no linux line` };
    await mount(slot, join(MOUNTS, "root"));
    const root = join(MOUNTS, "root");
    const result = loadKexecKernel({ kernel: insideRoot(root, KERNEL), initrd: insideRoot(root, INITRD), cmdline });
    return result.loaded ? { loaded: true, slot: choice.slot, cmdline } : result;
  } catch (e) {
    return { loaded: false, reason: (e as Error).message };
  } finally {
    for (const at of mounted.reverse()) if (isMountPoint(at)) unmount(at);
  }
}

/** devtmpfs makes a partition's node shortly after the kernel read the table. */
async function waitForNode(node: string) {
  for (let i = 0; i < 100 && !existsSync(node); i++) await Bun.sleep(50);
  if (!existsSync(node)) throw new Error(`${node} did not appear after the partition table was read`);
}
