import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { capture } from "../../../lib/run.ts";
import { BIG_FILE, clampMtimes, writeInitramfs } from "./cpio.ts";
import { RamdiskTree } from "./tree.ts";

const work = mkdtempSync(join(tmpdir(), "ooo-initramfs-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A ramdisk tree as the output assembles one, its files made `when` (seconds since the epoch). */
function tree(name: string, when: number): RamdiskTree {
  const root = join(work, `${name}-root`);
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  symlinkSync("usr/bin", join(root, "bin"));
  writeFileSync(join(root, "usr/bin/tool"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
  writeFileSync(join(root, "usr/bin/big"), Buffer.alloc(BIG_FILE + 1, 7));
  const t = new RamdiskTree(root, join(work, `${name}-tree`));
  t.mirrorTopLevelLinks();
  t.copyFromRoot("/bin/tool", "programs");
  t.copyFromRoot("/usr/bin/big", "programs");
  t.write("init", "#!/bin/sh\n", 0o755);
  t.mkdir("tmp", 0o1777);
  for (const p of ["init", "usr/bin/tool", "usr/bin/big", "usr/bin", "usr", "tmp"]) utimesSync(join(t.dir, p), when, when);
  return t;
}

describe("the initramfs", () => {
  test("the same tree gives the same bytes, whenever its files were made; big files get their own archive", async () => {
    const epoch = 1704067200;
    const outs: Buffer[] = [];
    for (const [name, when] of [["a", epoch + 1000], ["b", epoch + 99999]] as const) {
      const t = tree(name, when);
      clampMtimes(t, epoch);
      const out = join(work, `${name}.initramfs`);
      const segments = await writeInitramfs({ tree: t, out, scratch: work, cacheDir: join(work, `${name}-cache`), level: 3 });
      expect(segments.map((s) => s.entries)).toEqual([6, 1]);
      outs.push(readFileSync(out));
    }
    expect(outs[0]!.equals(outs[1]!)).toBe(true);
    expect(outs[0]!.length % 4).toBe(0);
    // The first archive: sorted, owned by root, mtimes clamped.
    const listing = await capture("sh", ["-c", `zstd -dc < ${join(work, "a.initramfs")} 2>/dev/null | cpio -itv --quiet`]);
    const lines = listing.trim().split("\n");
    expect(lines.map((l) => l.split(/\s+/).slice(8).join(" "))).toEqual(["bin -> usr/bin", "init", "tmp", "usr", "usr/bin", "usr/bin/tool"]);
    for (const l of lines) expect(l.split(/\s+/).slice(2, 4)).toEqual(["root", "root"]);
  });

  test("a compressed archive comes from the cache the second time", async () => {
    const t = tree("c", 1704067200);
    const o = { tree: t, out: join(work, "c.initramfs"), scratch: work, cacheDir: join(work, "c-cache"), level: 3 };
    expect((await writeInitramfs(o)).map((s) => s.cached)).toEqual([false, false]);
    expect((await writeInitramfs(o)).map((s) => s.cached)).toEqual([true, true]);
  });
});
