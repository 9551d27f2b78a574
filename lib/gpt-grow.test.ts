import { afterEach, describe, expect, test } from "bun:test";
import { rmSync, statSync, truncateSync } from "node:fs";
import { run } from "./run.ts";
import { ext4Bytes, goldenLikeDisk, sfdiskParts } from "../test/support/golden-like-disk.ts";
import { growStatePartition } from "./gpt-grow.ts";

const MiB = 2 ** 20;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("growing the state partition", () => {
  test("with a config-drive partition in the disk's last MiB", async () => {
    const { file, dir } = await goldenLikeDisk();
    dirs.push(dir);
    truncateSync(file, 256 * MiB);
    const parts = await growStatePartition(file, { tail: { name: "config-2", bytes: 16 * MiB } });
    expect(statSync(file).size).toBe(256 * MiB);
    expect(parts.map((p) => p.name)).toEqual(["bios-boot", "ooo-boot", "ooo-root-a", "ooo-root-b", "ooo-state", "config-2"]);
    const [state, drive] = [parts[4]!, parts[5]!];
    expect(drive.size * 512).toBe(16 * MiB);
    expect(drive.start).toBe(state.start + state.size);
    // The drive ends before the backup GPT (33 sectors) in the last, partly used MiB.
    expect(256 * MiB - (drive.start + drive.size) * 512).toBeLessThanOrEqual(MiB);
    expect(await ext4Bytes(file, state.start * 512)).toBe(state.size * 512);
    await run("sfdisk", ["-V", file], { echo: false });
    await run("e2fsck", ["-fn", `${file}?offset=${state.start * 512}`], { echo: false });
    // What it returned is the table on the disk now, read again.
    expect(await sfdiskParts(file)).toEqual(parts as Awaited<ReturnType<typeof sfdiskParts>>);
  });

  test("a disk with no room for the tail partition is refused", async () => {
    const { file, dir } = await goldenLikeDisk();
    dirs.push(dir);
    await expect(growStatePartition(file, { tail: { name: "config-2", bytes: 64 * MiB } })).rejects.toThrow("no room for a config-2 partition");
  });
});
