import { readFileSync } from "node:fs";
import { log } from "../../lib/log.ts";
import { SLOT_FILES, type Slot } from "../../wire/boot.ts";
import type { NodeDisk } from "./disk.ts";
import { partuuidOf } from "./host.ts";
import { insideRoot, kexecCmdline, loadKexecKernelInBackground, type KexecResult } from "./kexec.ts";

/**
 * A new image seldom brings a new kernel: the running root's kernel and
 * initrd are loaded for kexec into the new slot on a thread while the slot
 * is written; finishNewSlot (slot-mounts.ts) checks that the new root
 * holds the same files, and restart.ts uses the load only then.
 */
export interface KernelPreload {
  kernel: string;
  initrd: string;
  cmdline: string;
  slot: Slot;
  /** Started by startPreload. */
  result?: Promise<KexecResult>;
  /** Set by finishNewSlot: whether the new root boots these very files. */
  inNewRoot?: boolean;
}

export function preloadRunningKernel(disk: NodeDisk, slot: Slot): KernelPreload | undefined {
  try {
    const kernel = insideRoot("/", SLOT_FILES.kernel);
    const initrd = insideRoot("/", SLOT_FILES.initrd);
    const cmdline = kexecCmdline(readFileSync("/proc/cmdline", "utf8"), { partuuid: partuuidOf(disk.slots[slot]), slot, trial: true });
    return { kernel, initrd, cmdline, slot };
  } catch (e) {
    log.warn(`takeover: not loading the running kernel for kexec ahead: ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * When the slot's writing begins: the kernel's hashing of what it loads
 * takes a vCPU for seconds under emulation, and the fetch before needs
 * both (the writing is mostly the disk's).
 */
export function startPreload(preload: KernelPreload | undefined) {
  if (preload) preload.result ??= loadKexecKernelInBackground({ kernel: preload.kernel, initrd: preload.initrd, cmdline: preload.cmdline });
}
