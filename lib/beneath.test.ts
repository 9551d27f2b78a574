import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Beneath, EscapesRoot } from "./beneath.ts";

/** Directories of a tree are reached only beneath its root and never through a symlink. */
const work = mkdtempSync(join(tmpdir(), "ooo-beneath-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

test("a path through a symlink, absolute or relative, or up and out with .., is refused; a plain one opens", () => {
  const outside = join(work, "outside");
  const root = join(work, "root");
  mkdirSync(outside);
  mkdirSync(join(root, "a/b"), { recursive: true });
  symlinkSync(outside, join(root, "abs"));
  symlinkSync("a", join(root, "rel"));
  const tree = new Beneath(root);
  try {
    for (const rel of ["abs", "abs/x", "rel", "rel/b", "a/../..", "../outside"]) expect(() => tree.dir(rel), rel).toThrow(EscapesRoot);
    const b = tree.dir("./a/b/");
    try {
      const fd = b.create("f");
      b.symlink("s", "/etc");
      expect(b.lstat("s")?.isSymbolicLink()).toBe(true);
      expect(b.lstat("missing")).toBeUndefined();
      // O_EXCL|O_NOFOLLOW: a name already taken, by a symlink above all, is not opened.
      expect(() => b.create("s")).toThrow(/EEXIST/);
      require("node:fs").closeSync(fd);
    } finally {
      b.close();
    }
    expect(tree.dir("").where).toBe("./");
  } finally {
    tree.close();
  }
  expect(readdirSync(outside)).toEqual([]);
});
