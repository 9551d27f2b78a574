import { afterEach, describe, expect, test } from "bun:test";
import { rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../lib/run.ts";
import { ext4Bytes, goldenLikeDisk, sfdiskParts } from "../../test/support/golden-like-disk.ts";
import { writeDisk } from "./qemu-disk.ts";

const MiB = 2 ** 20;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function goldenLike() {
  const disk = await goldenLikeDisk();
  dirs.push(disk.dir);
  return disk;
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
    const p = await sfdiskParts(node);
    expect(p.map((x) => x.name)).toEqual(["bios-boot", "ooo-boot", "ooo-root-a", "ooo-root-b", "ooo-state"]);
    const state = p.at(-1)!;
    expect((state.start + state.size) * 512).toBeGreaterThan(128 * MiB - MiB);
    expect(await ext4Bytes(node, state.start * 512)).toBe(Math.floor((state.size * 512) / 1024) * 1024);
    await run("sfdisk", ["-V", node], { echo: false }); // the table (and its backup) is sound
    await run("e2fsck", ["-fn", `${node}?offset=${state.start * 512}`], { echo: false });
    // The other partitions did not move.
    const where = (x: { start: number; size: number; name: string }) => `${x.name} ${x.start}+${x.size}`;
    expect(p.slice(0, 4).map(where)).toEqual((await sfdiskParts(file)).slice(0, 4).map(where));
  });

  test("a disk smaller than the image is refused", async () => {
    const { file, dir } = await goldenLike();
    await expect(writeDisk(file, join(dir, "node.raw"), 32 * MiB)).rejects.toThrow("smaller than the image");
  });
});
