import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OutsideRoot } from "../errors.ts";
import type { Control } from "./control.ts";
import type { RenderedFile } from "./render.ts";
import { writeTree } from "./write.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function scratch() {
  const d = mkdtempSync(join(tmpdir(), "oac-write-"));
  dirs.push(d);
  return d;
}
const file = (relative: string, body: string, control: Partial<Control> = {}): RenderedFile => ({
  source: `/templates/${relative}`,
  relative,
  body: Buffer.from(body),
  control: { allowEmpty: true, ...control },
});

describe("paths that leave the output root are refused before anything is written", () => {
  // [what, set up the root (given root and a folder outside it), relative path written]
  const table: [string, (root: string, outside: string) => void, string][] = [
    ["absolute symlinked directory", (root, outside) => symlinkSync(outside, join(root, "etc")), "etc/passwd"],
    ["relative symlink climbing out", (root) => symlinkSync("../..", join(root, "up")), "up/x/escape"],
    ["symlink deeper in the tree", (root, outside) => (mkdirSync(join(root, "a/b"), { recursive: true }), symlinkSync(outside, join(root, "a/b/c"))), "a/b/c/d/e"],
    ["file that is a symlink to outside", (root, outside) => (mkdirSync(join(root, "etc")), symlinkSync(join(outside, "target"), join(root, "etc/motd"))), "etc/motd"],
    ["dangling symlink to outside", (root) => (mkdirSync(join(root, "etc")), symlinkSync("/nonexistent-ooo/x", join(root, "etc/motd"))), "etc/motd"],
    ["chain of symlinks", (root, outside) => (symlinkSync("hop2", join(root, "hop1")), symlinkSync(outside, join(root, "hop2"))), "hop1/f"],
  ];
  test.each(table)("%s", (_, setup, relative) => {
    const root = join(scratch(), "root");
    const outside = scratch();
    mkdirSync(root);
    setup(root, outside);
    expect(() => writeTree(root, [file("first-ok", "fine"), file(relative, "bad")])).toThrow(OutsideRoot);
    expect(existsSync(join(root, "first-ok"))).toBe(false);
    expect(Bun.spawnSync(["find", outside, "-mindepth", "1"]).stdout.toString()).toBe("");
  });

  test("symlinks that stay inside the root are followed", () => {
    const root = scratch();
    mkdirSync(join(root, "real"));
    symlinkSync("real", join(root, "link"));
    symlinkSync(join(root, "real"), join(root, "abs"));
    writeTree(root, [file("link/a", "A"), file("abs/b", "B")]);
    expect(readFileSync(join(root, "real/a"), "utf8")).toBe("A");
    expect(readFileSync(join(root, "real/b"), "utf8")).toBe("B");
  });
});

describe("modes and owners", () => {
  test("the control file's mode, owner and group are applied", () => {
    if (process.getuid?.() !== 0) throw new Error("this test needs root (it chowns files)");
    const root = scratch();
    writeTree(root, [file("etc/secret", "s", { mode: 0o600, uid: 65534, gid: 65534 }), file("etc/plain", "p")]);
    const s = statSync(join(root, "etc/secret"));
    expect({ mode: s.mode & 0o7777, uid: s.uid, gid: s.gid }).toEqual({ mode: 0o600, uid: 65534, gid: 65534 });
    expect(statSync(join(root, "etc/plain")).mode & 0o7777).toBe(0o644);
  });

  test("an existing file gives its mode and owner to the new content", () => {
    const root = scratch();
    writeFileSync(join(root, "f"), "old", { mode: 0o640 });
    writeTree(root, [file("f", "new")]);
    expect(statSync(join(root, "f")).mode & 0o7777).toBe(0o640);
    expect(readFileSync(join(root, "f"), "utf8")).toBe("new");
  });

  test("unchanged content is not rewritten, but a wrong mode is fixed", () => {
    const root = scratch();
    writeFileSync(join(root, "same"), "content", { mode: 0o644 });
    const before = statSync(join(root, "same"));
    Bun.sleepSync(20);
    const [outcome] = writeTree(root, [file("same", "content", { mode: 0o600 })]);
    const after = statSync(join(root, "same"));
    expect(outcome!.action).toBe("unchanged");
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.mode & 0o7777).toBe(0o600);
  });

  test("allow_empty: false deletes the file instead of writing it empty", () => {
    const root = scratch();
    writeFileSync(join(root, "gone"), "x");
    const outcomes = writeTree(root, [file("gone", "", { allowEmpty: false }), file("never", "", { allowEmpty: false })]);
    expect(outcomes.map((o) => o.action)).toEqual(["deleted", "not-created"]);
    expect(existsSync(join(root, "gone"))).toBe(false);
  });
});

describe("atomic replacement", () => {
  test("a concurrent reader sees the old or the new file, never a mix", async () => {
    const root = scratch();
    const size = 1 << 20;
    const a = "a".repeat(size);
    const b = "b".repeat(size);
    writeTree(root, [file("big", a)]);
    const reader = Bun.spawn(
      [
        "bun",
        "-e",
        `const fs = require("fs"); let reads = 0, torn = 0; const end = Date.now() + 1500;
         while (Date.now() < end) { const t = fs.readFileSync(${JSON.stringify(join(root, "big"))}, "latin1");
           reads++; if (t.length !== ${size} || t !== t[0].repeat(${size})) torn++; }
         console.log(JSON.stringify({ reads, torn }));`,
      ],
      { stdout: "pipe" },
    );
    let writes = 0;
    const until = Date.now() + 1200;
    while (Date.now() < until) {
      writeTree(root, [file("big", writes % 2 ? a : b)]);
      writes++;
      await Bun.sleep(0);
    }
    const result = JSON.parse(await new Response(reader.stdout).text());
    expect(writes).toBeGreaterThan(10);
    expect(result.reads).toBeGreaterThan(10);
    expect(result.torn).toBe(0);
  });
});
