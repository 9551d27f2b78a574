import { statSync } from "node:fs";
import { capture, run } from "../../lib/run.ts";
import { DISK } from "../../wire/boot.ts";

/**
 * A node's disk file from the cached golden disk: a sparse copy (reflink
 * where the filesystem can), then, when the node's size asks for more than
 * the image, a grown disk — as Ironic's agent "fixes the GPT backup" after
 * writing a whole-disk image to a bigger device, and then some: the state
 * partition (wire/boot.ts: the last one) takes the new room and its ext4
 * grows with it. No loop device, no mount: sfdisk edits the table in the file and
 * resize2fs works on the filesystem at its offset.
 */
const SECTOR = 512;
/** resize2fs below grows ext4; a state partition of another filesystem needs its own tool. */
const STATE_FS: "ext4" = DISK.state.fs;

export async function writeDisk(source: string, dest: string, sizeBytes?: number): Promise<void> {
  await run("cp", ["--sparse=always", "--reflink=auto", source, dest], { what: "copying the image onto the node's disk", echo: false });
  const imageBytes = statSync(dest).size;
  if (sizeBytes === undefined || sizeBytes === imageBytes) return;
  if (sizeBytes < imageBytes) throw new Error(`the node's disk (${sizeBytes} bytes) is smaller than the image (${imageBytes} bytes)`);
  await growDisk(dest, sizeBytes);
}

interface SfdiskPartition {
  node: string;
  start: number;
  size: number;
  name?: string;
}

async function partitions(file: string): Promise<SfdiskPartition[]> {
  const json = JSON.parse(await capture("sfdisk", ["-J", file], { what: "reading the disk's partition table" })) as {
    partitiontable: { partitions: SfdiskPartition[] };
  };
  return json.partitiontable.partitions;
}

export async function growDisk(file: string, sizeBytes: number): Promise<void> {
  const aligned = Math.floor(sizeBytes / (1 << 20)) * (1 << 20);
  await run("truncate", ["-s", String(aligned), file], { echo: false });
  await run("sfdisk", ["-q", "--relocate", "gpt-bak-std", file], { what: "moving the backup GPT to the disk's new end", echo: false });
  const parts = await partitions(file);
  const state = parts.find((p) => p.name === DISK.state.name);
  if (!state || state.node !== `${file}${DISK.state.number}` || parts.at(-1) !== state)
    throw new Error(`the image's last partition is not ${DISK.state.name} (${DISK.state.number}): it cannot grow; use the image's own disk size`);
  await run("sfdisk", ["-q", "-N", String(DISK.state.number), "--no-reread", "--no-tell-kernel", file], {
    input: ", +\n",
    what: "growing the state partition",
    echo: false,
  });
  const grown = (await partitions(file)).find((p) => p.name === DISK.state.name)!;
  // resize2fs on a file would take the file's whole size: give it the partition's. It also cuts a
  // regular file to the filesystem's size, forgetting the offset: put the disk's size and its
  // backup GPT back afterwards.
  await run("resize2fs", ["-f", `${file}?offset=${grown.start * SECTOR}`, `${Math.floor((grown.size * SECTOR) / 1024)}K`], {
    what: `growing the state filesystem (${STATE_FS})`,
    echo: false,
  });
  if (statSync(file).size !== aligned) {
    await run("truncate", ["-s", String(aligned), file], { echo: false });
    await run("sfdisk", ["-q", "--relocate", "gpt-bak-std", file], { what: "writing the backup GPT again", echo: false });
  }
}
