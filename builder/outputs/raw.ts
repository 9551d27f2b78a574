import { emitBootFiles } from "./boot-files.ts";
import { emitDiskMap } from "./disk-map.ts";
import { disk } from "./steps.ts";
import type { OutputType } from "./types.ts";

/** `-t raw`: the whole golden disk (GPT, GRUB, root slots A and B, state), sparse, and the map of its data. */
export const rawOutput: OutputType = {
  name: "raw",
  files: ["raw", "disk-map.json", "vmlinuz", "initrd"],
  description: "the whole disk: GPT, GRUB, root slots A (filled) and B (empty), state partition; and NAME.disk-map.json, where its data is",
  async produce(work) {
    await emitDiskMap(work, await work.emit("raw", "raw", await disk(work)));
    await emitBootFiles(work, "raw");
  },
};
