import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../lib/run.ts";
import { mountType, SLOT_FILES, SLOT_PARTITIONS } from "../../wire/boot.ts";
import { TakeoverFailed } from "../errors.ts";
import { mountFs, syncFilesystemOf, unmountIfMounted, type MountMode } from "../mounts.ts";
import { insideRoot, sameContent } from "./kexec.ts";
import type { KernelPreload } from "./preload.ts";

/** Where the takeover mounts root slots: the one it writes (or boots next), and the running one as a source. */
export const NEW_ROOT = "/run/ooo/new-root";
export const ACTIVE_ROOT = "/run/ooo/active-root";

/** Both slots hold the same kind of filesystem (wire/boot.ts); the mkfs options below are ext4's. */
const SLOT = SLOT_PARTITIONS.A;
const SLOT_FS: "ext4" = SLOT.fs;

/** Mount a root slot's filesystem at `at`, in place of whatever an earlier run left there. */
export function mountSlot(device: string, at: string, mode: MountMode = {}) {
  mkdirSync(at, { recursive: true });
  unmountIfMounted(at);
  mountFs(device, at, mountType(SLOT), mode);
}

/** A fresh, empty filesystem on `device`, mounted read-write at NEW_ROOT. */
export async function formatNewSlot(device: string) {
  await run(`mkfs.${SLOT_FS}`, ["-q", "-F", "-L", SLOT.label, "-m", "0", device], { echo: false, what: `making the filesystem of ${device}` });
  mountSlot(device, NEW_ROOT);
}

/** The new root is written: check it can boot, see whether the preloaded kernel is its own, write it out, unmount. */
export function finishNewSlot(preload: KernelPreload | undefined) {
  try {
    const kernel = join(NEW_ROOT, SLOT_FILES.kernel);
    if (!existsSync(kernel) || !statSync(kernel).size) throw new TakeoverFailed(`the new root has no /${SLOT_FILES.kernel}: it cannot boot from a slot`);
    if (preload)
      preload.inNewRoot =
        sameContent(preload.kernel, insideRoot(NEW_ROOT, SLOT_FILES.kernel)) && sameContent(preload.initrd, insideRoot(NEW_ROOT, SLOT_FILES.initrd));
    syncFilesystemOf(kernel);
  } finally {
    unmountIfMounted(NEW_ROOT);
  }
}
