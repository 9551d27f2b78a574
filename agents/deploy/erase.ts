import { closeSync, constants, openSync } from "node:fs";
import { log } from "../../lib/log.ts";
import { wipeEnds } from "./install.ts";
import { disks } from "./inventory.ts";
import { rereadPartitions } from "./syscalls.ts";

/**
 * The erase command (ooo delete): every disk loses its partition tables
 * and the signatures at either end (wipefs's first and last MiB, as
 * Ironic's erase_devices_metadata), so that nothing boots from it and the
 * next deploy starts from a blank disk. Returns the disks erased.
 */
export function eraseDisks(): string[] {
  const erased: string[] = [];
  for (const disk of disks()) {
    const device = `/dev/${disk.name}`;
    const fd = openSync(device, constants.O_RDWR | constants.O_EXCL);
    try {
      wipeEnds({ fd, kind: "block" });
      try {
        rereadPartitions(fd);
      } catch (e) {
        log.warn(`${device}: ${(e as Error).message}`);
      }
    } finally {
      closeSync(fd);
    }
    log.info(`${device}: partition tables and signatures erased`);
    erased.push(device);
  }
  return erased;
}
