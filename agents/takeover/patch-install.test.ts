import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalTar } from "../../lib/tar/canonical.ts";
import { encodeHeader, END_OF_ARCHIVE, padding, type TarEntry } from "../../lib/tar/encode.ts";
import { indexStream } from "../../store/client/indexer.ts";
import { requireCommand, requireRoot } from "../../test/support/require.ts";
import type { ChunkIndex } from "../../wire/chunk-index.ts";
import { UnsafePath } from "../errors.ts";
import { applyPatch, entryReader, planPatch, type PatchPlan } from "./patch-install.ts";
import { assembledDigest, checkWritten, PatchedRootDiffers } from "./patch-verify.ts";

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

/** Every mtime in the tree set to one instant, so only real changes differ (symlinks keep theirs: utimes follows them). */
function settle(root: string, at = 1_600_000_000) {
  const walk = (p: string) => {
    if (statSync(p, { throwIfNoEntry: false })?.isDirectory() && !statSync(p).isSymbolicLink()) for (const n of readdirSync(p)) walk(join(p, n));
    try {
      utimesSync(p, at, at);
    } catch {}
  };
  walk(root);
}

/**
 * The error a promise rejects with, or undefined. Awaited: an `expect(p).rejects`
 * nobody awaits asserts nothing.
 */
const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

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
  // What a Debian root holds besides: set-id bits, owners, capabilities, binary xattrs, devices, fifos.
  writeFileSync(join(r, "usr/bin/su"), random(4_000, 6));
  chmodSync(join(r, "usr/bin/su"), 0o4755);
  writeFileSync(join(r, "usr/bin/ping"), random(5_000, 7));
  execFileSync("setcap", ["cap_net_raw+ep", join(r, "usr/bin/ping")]);
  mkdirSync(join(r, "var/mail"), { recursive: true });
  chownSync(join(r, "var/mail"), 0, 8);
  chmodSync(join(r, "var/mail"), 0o2775);
  execFileSync("setfattr", ["-n", "user.note", "-v", "0sAAEC/w==", join(r, "var/mail")]);
  mkdirSync(join(r, "dev"));
  execFileSync("mknod", [join(r, "dev/null"), "c", "1", "3"]);
  execFileSync("mkfifo", [join(r, "dev/initctl")]);
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
  writeFileSync(join(r, "usr/bin/su"), random(4_100, 8)); // a new set-id binary …
  chownSync(join(r, "usr/bin/su"), 0, 42);
  chmodSync(join(r, "usr/bin/su"), 0o6755);
  writeFileSync(join(r, "usr/bin/ping"), random(5_100, 9)); // … and one with a capability
  execFileSync("setcap", ["cap_net_raw,cap_net_admin+ep", join(r, "usr/bin/ping")]);
  execFileSync("setfattr", ["-x", "user.note", join(r, "var/mail")]); // a kept directory loses an xattr, gains another
  execFileSync("setfattr", ["-n", "user.other", "-v", "1", join(r, "var/mail")]);
  rmSync(join(r, "dev/null"));
  execFileSync("mknod", [join(r, "dev/null"), "c", "1", "5"]); // a device changes its number
  rmSync(join(r, "dev/initctl"));
  mkdirSync(join(r, "run/systemd"), { recursive: true }); // a new directory tree
  execFileSync("mkfifo", [join(r, "run/systemd/initctl")]);
  settle(r);
  utimesSync(join(r, "etc/app/conf"), 1_700_000_000, 1_700_000_000); // mtime only
  return r;
}

describe("patched install", () => {
  requireRoot(); // devices, owners, capabilities
  requireCommand("setcap", "setfattr", "mknod", "mkfifo");

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
    expect(paths).toEqual(expect.arrayContaining(["./usr/bin/su", "./usr/bin/ping", "./var/mail/", "./dev/null", "./run/systemd/initctl"]));
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
    expect(statSync(join(target, "usr/bin/su")).mode & 0o7777).toBe(0o6755);
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
    expect(String(await rejection(applyPatch({ plan, fetched, root: target })))).toContain("sha256");
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
    expect(await rejection(applyPatch({ plan, fetched: new Map(), root }))).toBeInstanceOf(UnsafePath);
    expect(statSync(join(outside, "victim/file")).size).toBe(7);
  });
});

/**
 * What binds a patched root to the digest the node's metadata names
 * (patch-verify.ts): the stream the patch assembles, hashed from the fetched
 * entries and the running root's own bytes, must be that digest; what the
 * patch wrote, read back, must be what the index lists.
 */
describe("patched root verification", () => {
  const digestOf = (old: string, next: ChunkIndex, plan: PatchPlan, chunks: Map<string, Uint8Array>) => {
    const read = entryReader(plan, new Map(plan.chunks.map((c) => [c.id, chunks.get(c.id)!])));
    return assembledDigest({ next, plan, running: old, options: { sourceDateEpoch: SDE }, written: async (e) => read(e) }).digest;
  };

  test("the stream the patch assembles is the new image's digest, and what it wrote reads back as listed", async () => {
    const old = oldTree();
    const neu = newTree(old);
    const [o, n] = await Promise.all([indexTree(old), indexTree(neu)]);
    const plan = planPatch(n.index, o.index);
    expect(await digestOf(old, n.index, plan, n.chunks)).toBe(n.index.digest);
    const target = join(work, `verified-${Math.random().toString(36).slice(2)}`);
    Bun.spawnSync(["cp", "-a", old, target]);
    await applyPatch({ plan, fetched: new Map(plan.chunks.map((c) => [c.id, n.chunks.get(c.id)!])), root: target });
    checkWritten(plan, target, { sourceDateEpoch: SDE });
  });

  test("a valid image other than the named one, its index claiming the named digest, assembles to its own digest", async () => {
    const old = oldTree();
    const named = newTree(old);
    const served = newTree(old);
    writeFileSync(join(served, "etc/app/conf"), "a=2\n"); // another build: one file differs
    settle(served);
    const [o, n, x] = await Promise.all([indexTree(old), indexTree(named), indexTree(served)]);
    expect(x.index.digest).not.toBe(n.index.digest);
    const lie = { ...x.index, digest: n.index.digest };
    const plan = planPatch(lie, o.index);
    expect(await digestOf(old, lie, plan, x.chunks)).toBe(x.index.digest);
  });

  test("an index that calls a changed entry unchanged does not assemble to the digest: the running root's own bytes are hashed", async () => {
    const old = oldTree();
    const neu = newTree(old);
    const [o, n] = await Promise.all([indexTree(old), indexTree(neu)]);
    const before = new Map(o.index.entries!.map((e) => [e[0], e[2]]));
    // The store says ./etc/mode (its mode changed) is the running root's: the node would keep the old one.
    const lie = { ...n.index, entries: n.index.entries!.map((e): typeof e => (e[0] === "./etc/mode" ? [e[0], e[1], before.get(e[0])!] : e)) };
    const plan = planPatch(lie, o.index);
    expect(plan.extract.map((e) => e.path)).not.toContain("./etc/mode");
    expect(await digestOf(old, lie, plan, n.chunks)).not.toBe(n.index.digest);
  });

  test("what the patch wrote is read back: an entry that is not as listed, or a removed path still there, is found", async () => {
    const old = oldTree();
    const neu = newTree(old);
    const [o, n] = await Promise.all([indexTree(old), indexTree(neu)]);
    const plan = planPatch(n.index, o.index);
    const target = join(work, `readback-${Math.random().toString(36).slice(2)}`);
    Bun.spawnSync(["cp", "-a", old, target]);
    await applyPatch({ plan, fetched: new Map(plan.chunks.map((c) => [c.id, n.chunks.get(c.id)!])), root: target });
    chmodSync(join(target, "usr/bin/added"), 0o600);
    expect(() => checkWritten(plan, target, { sourceDateEpoch: SDE })).toThrow(PatchedRootDiffers);
    chmodSync(join(target, "usr/bin/added"), 0o644);
    checkWritten(plan, target, { sourceDateEpoch: SDE });
    mkdirSync(join(target, "usr/share/doc/gone"));
    utimesSync(join(target, "usr/share/doc"), 1_600_000_000, 1_600_000_000); // its directory as the patch left it
    expect(() => checkWritten(plan, target, { sourceDateEpoch: SDE })).toThrow(/still in the new root/);
  });
});

/**
 * Images that would write outside the slot through the copy of the running
 * root: its `var/run` is a symlink to the live system's /run, as on Debian.
 * A hostile or lying store can list entries beneath it, or bytes whose tar
 * header names another path than its index. Each must be refused, with
 * nothing written outside.
 */
describe("patched install never writes through a symlink of the copied root", () => {
  const MTIME = 1_600_000_000;
  const dir = (path: string): TarEntry => ({ path, type: "directory", mode: 0o755, uid: 0, gid: 0, size: 0, mtime: MTIME });
  const file = (path: string, body: string): [TarEntry, Buffer] => [{ path, type: "file", mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: MTIME }, Buffer.from(body)];
  const link = (path: string, type: "symlink" | "hardlink", linkpath: string): TarEntry => ({ path, type, linkpath, mode: 0o777, uid: 0, gid: 0, size: 0, mtime: MTIME });

  /** A canonical-looking stream of these entries, as a store would index it. */
  async function stream(entries: (TarEntry | [TarEntry, Buffer])[]) {
    const parts: Buffer[] = [];
    for (const e of entries) {
      const [header, data] = Array.isArray(e) ? e : [e, Buffer.alloc(0)];
      parts.push(encodeHeader(header), data, padding(data.length));
    }
    parts.push(END_OF_ARCHIVE);
    const chunks = new Map<string, Uint8Array>();
    const index = await indexStream([Buffer.concat(parts)], CHUNKER, (id, data) => void chunks.set(id, data), { entries: true });
    return { index, chunks };
  }

  /** The running root's copy and the live system it points into. */
  function copiedRoot() {
    const base = join(work, `escape-${Math.random().toString(36).slice(2)}`);
    const live = join(base, "live-run");
    mkdirSync(join(live, "ooo"), { recursive: true });
    writeFileSync(join(live, "ooo/node-state.json"), "the live system's own");
    writeFileSync(join(live, "secret"), "live");
    const root = join(base, "slot");
    mkdirSync(join(root, "var"), { recursive: true });
    mkdirSync(join(root, "etc"));
    writeFileSync(join(root, "etc/conf"), "a=1\n");
    symlinkSync(live, join(root, "var/run"));
    const old = [dir("./"), dir("./etc/"), file("./etc/conf", "a=1\n"), dir("./var/"), link("./var/run", "symlink", live)];
    return { live, root, old };
  }

  const liveUnchanged = (live: string) => {
    expect(readdirSync(live).sort()).toEqual(["ooo", "secret"]);
    expect(readdirSync(join(live, "ooo"))).toEqual(["node-state.json"]);
    expect(readFileSync(join(live, "ooo/node-state.json"), "utf8")).toBe("the live system's own");
    expect(readFileSync(join(live, "secret"), "utf8")).toBe("live");
  };

  async function patch(root: string, old: Awaited<ReturnType<typeof stream>>, next: Awaited<ReturnType<typeof stream>>) {
    const plan = planPatch(next.index, old.index);
    const fetched = new Map(plan.chunks.map((c) => [c.id, next.chunks.get(c.id)!]));
    return rejection(applyPatch({ plan, fetched, root }));
  }

  test("an entry beneath the copy's var/run → /run is refused, and /run is untouched", async () => {
    const { live, root, old } = copiedRoot();
    const [o, n] = await Promise.all([stream(old), stream([...old, file("./var/run/ooo/node-state.json", '{"slot":"Z"}')])]);
    const error = await patch(root, o, n);
    expect(error).toBeInstanceOf(UnsafePath);
    expect(String(error)).toContain("./var/run/ooo/node-state.json");
    liveUnchanged(live);
  });

  test("a symlink the image itself adds, then an entry beneath it, is refused", async () => {
    const { live, root, old } = copiedRoot();
    const next = [...old.slice(0, 3), link("./etc/x", "symlink", live), file("./etc/x/planted", "x"), ...old.slice(3)];
    const [o, n] = await Promise.all([stream(old), stream(next)]);
    expect(await patch(root, o, n)).toBeInstanceOf(UnsafePath);
    liveUnchanged(live);
  });

  test("a hard link to a file reached through the symlink is refused", async () => {
    const { live, root, old } = copiedRoot();
    const [o, n] = await Promise.all([stream(old), stream([...old.slice(0, 3), link("./etc/stolen", "hardlink", "./var/run/secret"), ...old.slice(3)])]);
    expect(await patch(root, o, n)).toBeInstanceOf(UnsafePath);
    expect(existsSync(join(root, "etc/stolen"))).toBe(false);
    liveUnchanged(live);
  });

  test("bytes whose tar header names another path than the index lists are refused", async () => {
    const { live, root, old } = copiedRoot();
    // The store lists an entry ./etc/conf whose bytes are a header for ./var/run/secret.
    const [o, n] = await Promise.all([stream(old), stream([...old.slice(0, 2), file("./var/run/secret", "owned"), ...old.slice(3)])]);
    const entries = n.index.entries!.map((e): typeof e => (e[0] === "./var/run/secret" ? ["./etc/conf", e[1], e[2]] : e));
    const error = await patch(root, o, { ...n, index: { ...n.index, entries } });
    expect(error).toBeInstanceOf(UnsafePath);
    expect(String(error)).toContain('are the tar entry "./var/run/secret"');
    liveUnchanged(live);
    expect(readFileSync(join(root, "etc/conf"), "utf8")).toBe("a=1\n");
  });
});
