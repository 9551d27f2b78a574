import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { GptPartition } from "../../lib/gpt-grow.ts";
import { isMountPoint, mountFs, unmount } from "../mounts.ts";
import { BOOT_FILES, chooseSlot, DISK, ENV_KEYS, extraCmdline, mountType, parseEnv, SLOT_FILES, SLOT_PARTITIONS } from "../../wire/boot.ts";
import { insideRoot, loadKexecKernel } from "../takeover/kexec.ts";
import { grubLinuxArgs } from "./grub-linux.ts";

/**
 * Starting the installed root without a second firmware boot: the kernel
 * and initrd GRUB would boot, loaded with kexec_file_load (the takeover's
 * kexec.ts) and the command line GRUB would give them, read from the
 * disk's own boot partition (the boot contract: wire/boot.ts).
 */

const MOUNTS = "/run/ooo-deploy";

export type Prepared = { loaded: true; slot: string; cmdline: string } | { loaded: false; reason: string };

/** Load the installed root's kernel for kexec. Never throws: a reason says why not, and the deployer boots the disk instead. */
export async function loadInstalledRoot(parts: GptPartition[]): Promise<Prepared> {
  const mounted: string[] = [];
  const mount = async (part: GptPartition, spec: { fs: Parameters<typeof mountType>[0]["fs"] }, at: string) => {
    await waitForNode(part.node);
    mkdirSync(at, { recursive: true });
    mountFs(part.node, at, mountType(spec), { readOnly: true });
    mounted.push(at);
  };
  try {
    const byName = (name: string) => parts.find((p) => p.name === name);
    const boot = byName(DISK.boot.name);
    if (!boot) return { loaded: false, reason: `the disk has no ${DISK.boot.name} partition` };
    await mount(boot, DISK.boot, join(MOUNTS, "boot"));
    const env = parseEnv(readFileSync(join(MOUNTS, "boot", BOOT_FILES.env), "latin1"));
    const choice = chooseSlot(env);
    // A fresh disk boots slot A for good; a trial would need its try used up on the disk first.
    if (choice.trial || choice.fallback)
      return { loaded: false, reason: `the boot environment picks ${choice.fallback ? "no slot" : `slot ${choice.slot} on trial`}` };
    const spec = SLOT_PARTITIONS[choice.slot];
    const slot = byName(spec.name);
    if (!slot?.uuid) return { loaded: false, reason: `the disk has no ${spec.name} partition with a UUID` };
    const cmdline = grubLinuxArgs(readFileSync(join(MOUNTS, "boot", BOOT_FILES.grubConfig), "utf8"), {
      partuuid: slot.uuid.toLowerCase(),
      slot: choice.slot,
      trial: "0",
      [ENV_KEYS.extraCmdline]: extraCmdline(env).join(" "),
    });
    if (!cmdline) return { loaded: false, reason: `${BOOT_FILES.grubConfig} has no linux line` };
    await mount(slot, spec, join(MOUNTS, "root"));
    const root = join(MOUNTS, "root");
    const result = loadKexecKernel({ kernel: insideRoot(root, SLOT_FILES.kernel), initrd: insideRoot(root, SLOT_FILES.initrd), cmdline });
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
