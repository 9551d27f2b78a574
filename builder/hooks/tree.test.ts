import { afterEach, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { requireCommand } from "../../test/support/require.ts";
import { loadElementHeader, type Element } from "../elements/element.ts";
import { DuplicateHook } from "../errors.ts";
import { mergeHooks } from "./tree.ts";

const DIB_RUN_PARTS = "/usr/lib/python3/dist-packages/diskimage_builder/lib/dib-run-parts";

let scratch: string[] = [];
afterEach(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
  scratch = [];
});

/** Elements from a table of files: "element/path" → content (a leading "x:" makes it executable, "->" a symlink). */
function elements(files: Record<string, string>): { elements: Element[]; hooks: string } {
  const root = realpathSync(mkdtempSync(join(tmpdir(), "ooo-tree-")));
  scratch.push(root);
  const names = new Set<string>();
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, "elements", path);
    names.add(path.split("/")[0]!);
    mkdirSync(dirname(full), { recursive: true });
    if (content.startsWith("->")) symlinkSync(content.slice(2), full);
    else if (content === "/") mkdirSync(full, { recursive: true });
    else {
      writeFileSync(full, content.replace(/^x:/, ""));
      chmodSync(full, content.startsWith("x:") ? 0o755 : 0o644);
    }
  }
  return {
    elements: [...names].sort().map((n) => loadElementHeader(n, join(root, "elements", n))),
    hooks: join(root, "hooks"),
  };
}

/** What DIB's own runner would run from a merged phase folder, in its order. */
function dibList(phaseDir: string, env: Record<string, string> = {}): string[] {
  const r = spawnSync("bash", [DIB_RUN_PARTS, "--list", phaseDir], { env: { ...process.env, LC_ALL: "C", ...env } });
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return r.stdout.toString().split("\n").filter(Boolean).map((p) => basename(p));
}

describe("mergeHooks: which hooks run, in which order", () => {
  const SH = "x:#!/bin/sh\n";

  test("selection and order match diskimage-builder's dib-run-parts --list", async () => {
    requireCommand("bash", DIB_RUN_PARTS);
    const { elements: els, hooks } = elements({
      "a/install.d/10-a": SH,
      "a/install.d/9-a": SH,
      "a/install.d/foo.sh": SH, // dotted name: skipped
      "a/install.d/50-not-executable": "#!/bin/sh\n", // no exec bit: skipped
      "a/install.d/sub/": "/", // folders are not hooks
      "a/install.d/.hidden": SH, // dot files are not merged
      "b/install.d/100-b": SH,
      "b/install.d/05_b": SH,
      "b/install.d/zz": SH,
      "b/install.d/20-link": "->10-target-outside",
      "b/install.d/10-target-outside": SH.replace("x:", "x:"),
      "b/install.d/30-dangling": "->/nonexistent",
      "b/post-install.d/01-p": SH,
    });
    const tree = await mergeHooks(els, hooks, {});
    const ours = tree.hooks.get("install.d")!.map((h) => h.name);
    expect(ours).toEqual(dibList(join(hooks, "install.d")));
    expect(ours).toEqual(["zz", "05_b", "9-a", "10-a", "10-target-outside", "20-link", "100-b"]);
    expect(tree.hooks.get("install.d")!.find((h) => h.name === "05_b")!.element).toBe("b");
    expect(tree.hooks.get("post-install.d")!.map((h) => h.name)).toEqual(["01-p"]);
    expect(tree.hooks.has("root.d")).toBe(false);
  });

  test("RUN_PARTS_REGEX is honoured like dib-run-parts", async () => {
    requireCommand("bash", DIB_RUN_PARTS);
    const { elements: els, hooks } = elements({ "a/install.d/10-a.sh": SH, "a/install.d/20-b": SH });
    const env = { RUN_PARTS_REGEX: "^[0-9]+-[a-z]+\\.sh$" };
    const tree = await mergeHooks(els, hooks, env);
    expect(tree.hooks.get("install.d")!.map((h) => h.name)).toEqual(dibList(join(hooks, "install.d"), env));
    expect(tree.hooks.get("install.d")!.map((h) => h.name)).toEqual(["10-a.sh"]);
  });

  test("the same hook name in two elements is DIB's duplicated-hook error", async () => {
    const { elements: els, hooks } = elements({ "a/install.d/50-same": SH, "b/install.d/50-same": SH });
    const run = mergeHooks(els, hooks, {});
    await expect(run).rejects.toThrow(DuplicateHook);
    await expect(run).rejects.toThrow("There is a duplicated hook in your elements: install.d/50-same is in both a and b");
  });

  test("folders of the same name merge; tests/ and __pycache__ are not merged", async () => {
    const { elements: els, hooks } = elements({
      "a/static/etc/a.conf": "a",
      "b/static/etc/b.conf": "b",
      "a/tests/test.yaml": "t",
      "a/__pycache__/x.pyc": "p",
      "a/bin/tool-a": SH,
    });
    await mergeHooks(els, hooks, {});
    expect(existsSync(join(hooks, "static/etc/a.conf"))).toBe(true);
    expect(existsSync(join(hooks, "static/etc/b.conf"))).toBe(true);
    expect(existsSync(join(hooks, "tests"))).toBe(false);
    expect(existsSync(join(hooks, "__pycache__"))).toBe(false);
    expect(existsSync(join(hooks, "bin/tool-a"))).toBe(true);
  });

  test("element files keep their modes but for group and other write (a checkout made under umask 002)", async () => {
    const { elements: els, hooks } = elements({
      "a/static/etc/shared.conf": "s",
      "a/static/etc/secret": "k",
      "a/static/usr/bin/tool": SH,
      "a/static/etc/link": "->/etc/passwd",
      "a/README": "top-level",
    });
    const src = els[0]!.dir;
    const modes: [string, number][] = [
      ["static", 0o775],
      ["static/etc", 0o775],
      ["static/etc/shared.conf", 0o664],
      ["static/etc/secret", 0o600],
      ["static/usr/bin/tool", 0o775],
      ["README", 0o666],
    ];
    for (const [path, mode] of modes) chmodSync(join(src, path), mode);
    const passwd = statSync("/etc/passwd").mode;
    await mergeHooks(els, hooks, {});
    const got = (path: string) => statSync(join(hooks, path)).mode & 0o7777;
    expect(modes.map(([path]) => [path, got(path).toString(8)])).toEqual([
      ["static", "755"],
      ["static/etc", "755"],
      ["static/etc/shared.conf", "644"],
      ["static/etc/secret", "600"],
      ["static/usr/bin/tool", "755"],
      ["README", "644"],
    ]);
    expect(readlinkSync(join(hooks, "static/etc/link"))).toBe("/etc/passwd");
    expect(statSync("/etc/passwd").mode).toBe(passwd); // a symlink's target is never touched
  });

  test("environment.d files are listed in dib-run-parts' source order", async () => {
    const { elements: els, hooks } = elements({
      "a/environment.d/9-a": "export A=1\n",
      "b/environment.d/10-b.bash": "export B=1\n",
      "b/environment.d/README~": "",
    });
    const tree = await mergeHooks(els, hooks, {});
    expect(tree.environmentFiles).toEqual(["10-b.bash", "9-a"]);
  });

  test("install types: the chosen <prefix>-<type>-install folder's hooks are linked into install.d", async () => {
    const files = {
      "a/install.d/a-source-install/60-a": SH,
      "a/install.d/a-package-install/60-a": SH,
      "a/install.d/a-package-install/70-a-pkg-only": SH,
      "b/install.d/b-source-install/61-b": SH,
      "b/install.d/10-plain": SH,
    };
    const cases: [Record<string, string>, string[], string][] = [
      [{}, ["10-plain", "60-a", "61-b"], "a-source-install/60-a"],
      [{ DIB_INSTALLTYPE_a: "package" }, ["10-plain", "60-a", "61-b", "70-a-pkg-only"], "a-package-install/60-a"],
      [{ DIB_DEFAULT_INSTALLTYPE: "package" }, ["10-plain", "60-a", "70-a-pkg-only"], "a-package-install/60-a"],
      [{ DIB_INSTALLTYPE_b: "none" }, ["10-plain", "60-a"], "a-source-install/60-a"],
    ];
    for (const [env, expected, link] of cases) {
      const { elements: els, hooks } = elements(files);
      const tree = await mergeHooks(els, hooks, env);
      expect({ env, hooks: tree.hooks.get("install.d")!.map((h) => h.name) }).toEqual({ env, hooks: expected });
      expect(readlinkSync(join(hooks, "install.d", "60-a"))).toBe(link);
      expect(tree.hooks.get("install.d")!.find((h) => h.name === "60-a")!.element).toBe("a");
    }
  });
});
