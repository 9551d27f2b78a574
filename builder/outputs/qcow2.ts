import { run } from "../../lib/run.ts";
import { emitBootFiles } from "./boot-files.ts";
import { disk } from "./steps.ts";
import type { OutputType } from "./types.ts";

/** `-t qcow2`: the whole disk through qemu-img, compressed unless -u (as DIB). */
export const qcow2Output: OutputType = {
  name: "qcow2",
  files: ["qcow2", "vmlinuz", "initrd"],
  description: "the whole disk as qcow2 (compressed unless -u)",
  async produce(work) {
    const raw = await disk(work);
    const file = await work.once("convert to qcow2", async () => {
      const out = work.scratchPath("disk.qcow2");
      await run("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", ...(work.options.uncompressed ? [] : ["-c"]), raw, out], {
        what: "converting the disk to qcow2 (qemu-img)",
      });
      return out;
    });
    await work.emit("qcow2", "qcow2", file);
    await emitBootFiles(work, "qcow2");
  },
};
