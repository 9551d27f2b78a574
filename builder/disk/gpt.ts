import { run } from "../../lib/run.ts";
import { SECTOR, type DiskLayout } from "./layout.ts";
import { uuidFor } from "./uuid.ts";

/**
 * Write the partition table with sfdisk on the image file — no loop device.
 * Disk and partition GUIDs come from the image digest, so the same content
 * gives the same table.
 */
export async function writePartitionTable(file: string, layout: DiskLayout, seed: string) {
  const lines = [
    "label: gpt",
    `label-id: ${uuidFor(seed, "disk")}`,
    "unit: sectors",
    "first-lba: 2048",
    ...layout.partitions.map(
      (p) =>
        `start=${p.offset / SECTOR}, size=${p.size / SECTOR}, type=${p.type}, ` +
        `uuid=${uuidFor(seed, `part-${p.name}`)}, name="${p.name}"`,
    ),
  ];
  await run("sfdisk", ["--quiet", "--no-reread", "--no-tell-kernel", file], {
    input: lines.join("\n") + "\n",
    what: "writing the partition table (sfdisk)",
  });
}
