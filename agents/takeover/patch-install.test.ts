import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalTar } from "../../lib/tar/canonical.ts";
import { indexStream } from "../../store/client/indexer.ts";
import type { ChunkIndex } from "../../wire/chunk-index.ts";
import { applyPatch, planPatch, UnsafePath } from "./patch-install.ts";

const work = mkdtempSync(join(tmpdir(), "ooo-patch-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const SDE = 2_000_000_000;
const CHUNKER = { min: 2048, avg: 8192, max: 32768 };

function random(n: number, seed: number) {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Every mtime in the tree set to one instant, so only real changes differ. */
function settle(root: string, at = 1_600_000_000) {
  const walk = (p: string) => {
    if (statSync(p, { throwIfNoEntry: false })?.isDirectory() && !statSync(p).isSymbolicLink()) for (const n of readdirSync(p)) walk(join(p, n));
    try {
      utimesSync(p, at, at);
    } catch {}
  };
  walk(root);
}

async function indexTree(root: string) {
  const chunks = new Map<string, Uint8Array>();
  const index = await indexStream(canonicalTar(root, { sourceDateEpoch: SDE }), CHUNKER, (id, data) => void chunks.set(id, data), { entries: true });
  return { index, chunks };
}

function oldTree() {
  const r = join(work, `old-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(r, "etc/app"), { recursive: true });
  mkdirSync(join(r, "usr/bin"), { recursive: true });
  mkdirSync(join(r, "usr/share/doc/gone/deep"), { recursive: true });
  mkdirSync(join(r, "becomes-file"));
  writeFileSync(join(r, "becomes-file/inner"), "x");
  writeFileSync(join(r, "becomes-dir"), "file for now");
  writeFileSync(join(r, "usr/bin/tool"), random(200_000, 1));
  writeFileSync(join(r, "usr/bin/same"), random(1_500_000, 2));
  linkSync(join(r, "usr/bin/tool"), join(r, "usr/bin/tool-alias"));
  writeFileSync(join(r, "usr/share/doc/gone/deep/README"), "old docs");
  writeFileSync(join(r, "etc/app/conf"), "a=1\n");
  writeFileSync(join(r, "etc/mode"), "m");
  symlinkSync("/usr/bin/tool", join(r, "usr/bin/link"));
  writeFileSync(join(r, "vmlinuz"), random(50_000, 3));
  settle(r);
  return r;
}

/** The old tree changed in every way an upgrade can change a root. */
function newTree(from: string) {
  const r = join(work, `new-${Math.random().toString(36).slice(2)}`);
  Bun.spawnSync(["cp", "-a", from, r]);
  writeFileSync(join(r, "usr/bin/tool"), random(210_000, 4)); // content; its hard link follows
  rmSync(join(r, "usr/share/doc/gone"), { recursive: true }); // a directory tree gone
  writeFileSync(join(r, "usr/bin/added"), random(30_000, 5));
  rmSync(join(r, "becomes-file"), { recursive: true });
  writeFileSync(join(r, "becomes-file"), "now a file");
  rmSync(join(r, "becomes-dir"));
  mkdirSync(join(r, "becomes-dir"));
  writeFileSync(join(r, "becomes-dir/child"), "child");
  rmSync(join(r, "usr/bin/link"));
  symlinkSync("tool", join(r, "usr/bin/link"));
  chmodSync(join(r, "etc/mode"), 0o600);
  settle(r);
  utimesSync(join(r, "etc/app/conf"), 1_700_000_000, 1_700_000_000); // mtime only
  return r;
}

describe("patched install", () => {
  test("a copy of the old root, patched with the changed entries only, is the new root byte for byte", async () => {
    const old = oldTree();
    const neu = newTree(old);
    const [o, n] = await Promise.all([indexTree(old), indexTree(neu)]);
    const plan = planPatch(n.index, o.index);
    const paths = plan.extract.map((e) => e.path);
    expect(paths).toContain("./usr/bin/tool");
    expect(paths).toContain("./usr/bin/tool-alias"); // hard link to a rewritten file
    expect(paths).toContain("./usr/bin/"); // its directory's mtime changed
    expect(paths).toContain("./etc/app/conf");
    expect(paths).not.toContain("./usr/bin/same");
    expect(paths).not.toContain("./vmlinuz");
    expect(plan.remove).toEqual(expect.arrayContaining(["./usr/share/doc/gone/", "./becomes-file/", "./becomes-dir"]));
    expect(plan.remove).not.toContain("./usr/share/doc/gone/deep/README"); // inside a removed directory
    const chunkBytes = plan.chunks.reduce((a, c) => a + c.size, 0);
    expect(chunkBytes).toBeLessThan(n.index.size / 2);

    const target = join(work, "patched");
    Bun.spawnSync(["cp", "-a", old, target]);
    const fetched = new Map([...plan.chunks].map((c) => [c.id, n.chunks.get(c.id)!]));
    await applyPatch({ plan, fetched, root: target });
    const result = await indexStream(canonicalTar(target, { sourceDateEpoch: SDE }), CHUNKER);
    expect(result.digest).toBe(n.index.digest);
    expect(statSync(join(target, "usr/bin/tool")).ino).toBe(statSync(join(target, "usr/bin/tool-alias")).ino);
  });

  test("a fetched byte that differs from the entry's sha256 stops the patch", async () => {
    const old = oldTree();
    const neu = newTree(old);
    const [o, n] = await Promise.all([indexTree(old), indexTree(neu)]);
    const plan = planPatch(n.index, o.index);
    const fetched = new Map([...plan.chunks].map((c) => [c.id, Buffer.from(n.chunks.get(c.id)!)]));
    for (const data of fetched.values()) data.writeUInt8(data.readUInt8(data.length >> 1) ^ 0xff, data.length >> 1);
    const target = join(work, "patched-bad");
    Bun.spawnSync(["cp", "-a", old, target]);
    expect(applyPatch({ plan, fetched, root: target })).rejects.toThrow(/sha256/);
  });

  test("paths that leave the root are refused before anything changes", () => {
    const index = (entries: [string, number, string][]): ChunkIndex =>
      ({ version: 1, digest: `sha256:${"0".repeat(64)}`, size: 1 << 20, chunker: { algorithm: "x", ...CHUNKER }, chunks: [], entries }) as ChunkIndex;
    const h = "a".repeat(64);
    expect(() => planPatch(index([["./", 512, h], ["./../etc/passwd", 512, h]]), index([["./", 512, h]]))).toThrow(UnsafePath);
    expect(() => planPatch(index([["./", 512, h]]), index([["./", 512, h], ["./a//b", 512, h]]))).toThrow(UnsafePath);
  });

  test("removing never follows a symlink in the copied root out of it", async () => {
    const outside = join(work, "outside");
    mkdirSync(join(outside, "victim"), { recursive: true });
    writeFileSync(join(outside, "victim/file"), "keep me");
    const root = join(work, "symlinked");
    mkdirSync(root);
    symlinkSync(outside, join(root, "lib"));
    const plan = { extract: [], remove: ["./lib/victim/"], chunks: [], kept: 0 };
    expect(applyPatch({ plan, fetched: new Map(), root })).rejects.toThrow(UnsafePath);
    expect(statSync(join(outside, "victim/file")).size).toBe(7);
  });
});
