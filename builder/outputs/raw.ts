import { emitBootFiles } from "./boot-files.ts";
import { emitDiskMap } from "./disk-map.ts";
import { disk } from "./steps.ts";
import type { OutputType } from "./types.ts";

/** `-t raw`: the whole golden disk (GPT, GRUB, root slots A and B, state), sparse, the map of its data and that data compressed. */
export const rawOutput: OutputType = {
  name: "raw",
  files: ["raw", "disk-map.json", "disk-pack", "vmlinuz", "initrd"],
  description: "the whole disk: GPT, GRUB, root slots A (filled) and B (empty), state partition; NAME.disk-map.json, where its data is, and NAME.disk-pack, that data compressed",
  async produce(work) {
    await emitDiskMap(work, await work.emit("raw", "raw", await disk(work)));
    await emitBootFiles(work, "raw");
  },
};
