import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { capture, run } from "../../lib/run.ts";
import { PARTITIONS } from "../../wire/boot.ts";
import { writeDisk } from "./qemu-disk.ts";

const MiB = 2 ** 20;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A small disk laid out like a golden one (wire/boot.ts), ext4 on the last partition (the state). */
async function goldenLike(): Promise<{ file: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "ooo-disk-test-"));
  dirs.push(dir);
  const file = join(dir, "image.raw");
  await run("truncate", ["-s", String(64 * MiB), file], { echo: false });
  const size = (p: (typeof PARTITIONS)[number]) => (p.size === "rest" ? "" : `size=${p.size === "slot" ? 16 : Math.min(p.size / MiB, 4)}MiB, `);
  const table = ["label: gpt", ...PARTITIONS.map((p) => `${size(p)}name=${p.name}`)].join("\n");
  await run("sfdisk", ["-q", file], { input: `${table}\n`, echo: false });
  const start = (await parts(file)).at(-1)!.start;
  await run("mkfs.ext4", ["-q", "-F", "-E", `offset=${start * 512}`, file, `${Math.floor(((64 * MiB) / 512 - 34 - start) / 2)}K`], { echo: false });
  return { file, dir };
}

async function parts(file: string) {
  return (JSON.parse(await capture("sfdisk", ["-J", file])) as { partitiontable: { partitions: { start: number; size: number; name: string }[] } })
    .partitiontable.partitions;
}

async function blockCount(file: string, offset: number) {
  const out = await capture("dumpe2fs", ["-h", `${file}?offset=${offset}`]);
  const [, count] = /Block count:\s+(\d+)/.exec(out)!;
  const [, size] = /Block size:\s+(\d+)/.exec(out)!;
  return Number(count) * Number(size);
}

describe("a node's disk from a golden disk", () => {
  test("the image's own size: a sparse copy", async () => {
    const { file, dir } = await goldenLike();
    const node = join(dir, "node.raw");
    await writeDisk(file, node);
    expect(statSync(node).size).toBe(64 * MiB);
    expect(statSync(node).blocks * 512).toBeLessThan(16 * MiB);
  });

  test("a bigger disk: the backup GPT moves to the end, the state partition and its ext4 take the room", async () => {
    const { file, dir } = await goldenLike();
    const node = join(dir, "node.raw");
    await writeDisk(file, node, 128 * MiB + 12345);
    expect(statSync(node).size).toBe(128 * MiB);
    const p = await parts(node);
    expect(p.map((x) => x.name)).toEqual(PARTITIONS.map((x) => x.name));
    const state = p.at(-1)!;
    expect((state.start + state.size) * 512).toBeGreaterThan(128 * MiB - MiB);
    expect(await blockCount(node, state.start * 512)).toBe(Math.floor((state.size * 512) / 1024) * 1024);
    await run("sfdisk", ["-V", node], { echo: false }); // the table (and its backup) is sound
    await run("e2fsck", ["-fn", `${node}?offset=${state.start * 512}`], { echo: false });
    // The other partitions did not move.
    const where = (x: { start: number; size: number; name: string }) => `${x.name} ${x.start}+${x.size}`;
    expect(p.slice(0, 4).map(where)).toEqual((await parts(file)).slice(0, 4).map(where));
  });

  test("a disk smaller than the image is refused", async () => {
    const { file, dir } = await goldenLike();
    await expect(writeDisk(file, join(dir, "node.raw"), 32 * MiB)).rejects.toThrow("smaller than the image");
  });
});
