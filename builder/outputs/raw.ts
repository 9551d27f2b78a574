import { emitBootFiles } from "./boot-files.ts";
import { disk } from "./steps.ts";
import type { OutputType } from "./types.ts";

/** `-t raw`: the whole golden disk (GPT, GRUB, root slots A and B, state), sparse. */
export const rawOutput: OutputType = {
  name: "raw",
  files: ["raw", "vmlinuz", "initrd"],
  description: "the whole disk: GPT, GRUB, root slots A (filled) and B (empty), state partition",
  async produce(work) {
    await work.emit("raw", "raw", await disk(work));
    await emitBootFiles(work, "raw");
  },
};
