import { log } from "../../lib/log.ts";
import { bootFiles } from "./steps.ts";
import type { OutputWork } from "./work.ts";

/**
 * Disk outputs come with NAME.vmlinuz and NAME.initrd beside them, for fast
 * direct boots. A root without a kernel still gets its disk — its layout,
 * filesystems and bytes can be checked without booting it (the tiny
 * busybox-base disks of the tests are) — but not silently: it cannot boot.
 */
export async function emitBootFiles(work: OutputWork, disk?: string) {
  const files = await bootFiles(work);
  if (!files) {
    if (disk)
      log.warn(
        `the root has no kernel and initrd (/boot/vmlinuz, /boot/initrd.img): ${work.base}.${disk} is written but will not boot; ` +
          "add an element that installs a kernel (debian-minimal does) for a disk that boots",
      );
    return;
  }
  await work.emit("vmlinuz", "vmlinuz", files.vmlinuz);
  await work.emit("initrd", "initrd", files.initrd);
}
