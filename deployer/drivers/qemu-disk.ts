import { statSync } from "node:fs";
import { growStatePartition } from "../../lib/gpt-grow.ts";
import { run } from "../../lib/run.ts";

/**
 * A node's disk file from the cached golden disk: a sparse copy (reflink
 * where the filesystem can), then, when the node's size asks for more than
 * the image, a grown disk: the state partition takes the new room
 * (lib/gpt-grow.ts, which the deploy ramdisk uses on real disks too).
 */
export async function writeDisk(source: string, dest: string, sizeBytes?: number): Promise<void> {
  await run("cp", ["--sparse=always", "--reflink=auto", source, dest], { what: "copying the image onto the node's disk", echo: false });
  const imageBytes = statSync(dest).size;
  if (sizeBytes === undefined || sizeBytes === imageBytes) return;
  if (sizeBytes < imageBytes) throw new Error(`the node's disk (${sizeBytes} bytes) is smaller than the image (${imageBytes} bytes)`);
  await run("truncate", ["-s", String(Math.floor(sizeBytes / (1 << 20)) * (1 << 20)), dest], { echo: false });
  await growStatePartition(dest);
}
