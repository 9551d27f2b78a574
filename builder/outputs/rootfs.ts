import { emitBootFiles } from "./boot-files.ts";
import { rootfs } from "./steps.ts";
import type { OutputType } from "./types.ts";

/** `-t rootfs`: the root slot's ext4 filesystem alone, as an upgrade writes it. */
export const rootfsOutput: OutputType = {
  name: "rootfs",
  files: ["rootfs", "vmlinuz", "initrd"],
  description: "the root filesystem alone (ext4, one root slot in size)",
  async produce(work) {
    await work.emit("rootfs", "rootfs", await rootfs(work));
    await emitBootFiles(work);
  },
};
