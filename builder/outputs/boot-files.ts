import { bootFiles } from "./steps.ts";
import type { OutputWork } from "./work.ts";

/** Disk outputs come with NAME.vmlinuz and NAME.initrd beside them, for fast direct boots. */
export async function emitBootFiles(work: OutputWork) {
  const files = await bootFiles(work);
  if (!files) return;
  await work.emit("vmlinuz", "vmlinuz", files.vmlinuz);
  await work.emit("initrd", "initrd", files.initrd);
}
