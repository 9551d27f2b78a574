import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { capture, run } from "../../lib/run.ts";

const MiB = 2 ** 20;

/** A small disk file laid out like a golden one: five named GPT partitions, ext4 on the last (ooo-state). */
export async function goldenLikeDisk(sizeMiB = 64): Promise<{ file: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "ooo-disk-test-"));
  const file = join(dir, "image.raw");
  await run("truncate", ["-s", String(sizeMiB * MiB), file], { echo: false });
  const table = ["label: gpt", "size=1MiB, name=bios-boot", "size=4MiB, name=ooo-boot", "size=16MiB, name=ooo-root-a", "size=16MiB, name=ooo-root-b", "name=ooo-state"].join("\n");
  await run("sfdisk", ["-q", file], { input: `${table}\n`, echo: false });
  const start = (await sfdiskParts(file)).at(-1)!.start;
  await run("mkfs.ext4", ["-q", "-F", "-E", `offset=${start * 512}`, file, `${Math.floor(((sizeMiB * MiB) / 512 - 34 - start) / 2)}K`], { echo: false });
  return { file, dir };
}

export async function sfdiskParts(file: string) {
  return (JSON.parse(await capture("sfdisk", ["-J", file])) as { partitiontable: { partitions: { start: number; size: number; name: string; uuid: string }[] } })
    .partitiontable.partitions;
}

/** The size the ext4 at `offset` says it has, in bytes. */
export async function ext4Bytes(file: string, offset: number) {
  const out = await capture("dumpe2fs", ["-h", `${file}?offset=${offset}`]);
  const [, count] = /Block count:\s+(\d+)/.exec(out)!;
  const [, size] = /Block size:\s+(\d+)/.exec(out)!;
  return Number(count) * Number(size);
}
