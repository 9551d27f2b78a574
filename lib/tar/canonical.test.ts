import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import tarStream from "tar-stream";
import { requireCommand, requireRoot } from "../../test/support/require.ts";
import { canonicalTar } from "./canonical.ts";

/**
 * The canonical root tar: byte-identical for identical trees whatever their
 * history (creation order, times after SOURCE_DATE_EPOCH), and a faithful
 * archive that GNU tar and tar-stream read back: sorted entries, clamped
 * mtimes, numeric owners, xattrs and file capabilities, hard links, long and
 * non-ASCII names, mode 0, devices and fifos.
 */
const SDE = 1704067200; // 2024-01-01
const OLD = 1000000000; // 2001: before SDE, kept as is
const LONG_DIR = `deep/${"d".repeat(90)}/${"e".repeat(90)}`;
const LONG_NAME = `${"n".repeat(120)}.txt`; // > 100 bytes: needs prefix or pax
const HUGE_NAME = `${"p".repeat(200)}/${"q".repeat(200)}`; // > 255: pax path

let scratch: string;

async function tarBytes(root: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of canonicalTar(root, { sourceDateEpoch: SDE })) chunks.push(c);
  return Buffer.concat(chunks);
}

/** One tree; `order` changes the order in which entries are created (readdir order follows it on most filesystems). */
function makeTree(root: string, order: "forward" | "reverse") {
  mkdirSync(root);
  const steps: (() => void)[] = [
    () => writeFileSync(join(root, "a.txt"), "alpha\n"),
    () => writeFileSync(join(root, "Z-upper"), "upper sorts before lower\n"),
    () => {
      mkdirSync(join(root, "etc"));
      writeFileSync(join(root, "etc", "passwd"), "root:x:0:0::/root:/bin/sh\n");
    },
    () => {
      writeFileSync(join(root, "secret"), "mode zero\n");
      chmodSync(join(root, "secret"), 0);
    },
    () => {
      writeFileSync(join(root, "setuid"), "#!/bin/sh\n");
      chmodSync(join(root, "setuid"), 0o4755);
    },
    () => {
      writeFileSync(join(root, "owned"), "by 1234:5678\n");
      chownSync(join(root, "owned"), 1234, 5678);
    },
    () => symlinkSync("etc/passwd", join(root, "link-to-passwd")),
    () => symlinkSync(`/${"t".repeat(150)}`, join(root, "long-link")),
    () => {
      writeFileSync(join(root, "hard-a"), "shared inode\n");
      linkSync(join(root, "hard-a"), join(root, "hard-b"));
    },
    () => {
      mkdirSync(join(root, LONG_DIR), { recursive: true });
      writeFileSync(join(root, LONG_DIR, LONG_NAME), "long\n");
      mkdirSync(join(root, HUGE_NAME), { recursive: true });
      writeFileSync(join(root, HUGE_NAME, "f"), "huge path\n");
    },
    () => writeFileSync(join(root, "ünïcødé"), "utf-8 name\n"),
    () => {
      writeFileSync(join(root, "ping"), "capability\n");
      chmodSync(join(root, "ping"), 0o755);
      execFileSync("setcap", ["cap_net_raw+ep", join(root, "ping")]);
      execFileSync("setfattr", ["-n", "user.note", "-v", "0sAAEC/w==", join(root, "ping")]); // binary value
    },
    () => execFileSync("mkfifo", [join(root, "fifo")]),
    () => {
      mkdirSync(join(root, "dev"));
      execFileSync("mknod", [join(root, "dev", "null"), "c", "1", "3"]);
    },
    () => writeFileSync(join(root, "empty"), ""),
  ];
  for (const s of order === "forward" ? steps : [...steps].reverse()) s();
  // Times: "old" keeps its mtime, everything else is newer than SDE and is clamped.
  writeFileSync(join(root, "old"), "from 2001\n");
  utimesSync(join(root, "old"), OLD, OLD);
}

interface Entry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string | null;
  size: number;
}

async function readWithTarStream(bytes: Buffer): Promise<{ entries: Entry[]; pax: Record<string, Record<string, string>> }> {
  const extract = tarStream.extract();
  const entries: Entry[] = [];
  const pax: Record<string, Record<string, string>> = {};
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (h, stream, next) => {
      entries.push({
        name: h.name,
        type: h.type ?? "file",
        mode: h.mode ?? 0,
        uid: h.uid ?? -1,
        gid: h.gid ?? -1,
        mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
        linkname: h.linkname ?? null,
        size: h.size ?? 0,
      });
      if (h.pax) pax[h.name] = h.pax as Record<string, string>;
      stream.on("end", next);
      stream.resume();
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
  });
  Readable.from([bytes]).pipe(extract);
  await done;
  return { entries, pax };
}

beforeAll(() => {
  requireRoot();
  requireCommand("setcap", "getcap", "setfattr", "getfattr", "mkfifo", "mknod", "tar");
  scratch = mkdtempSync(join(tmpdir(), "ooo-canonical-"));
  makeTree(join(scratch, "one"), "forward");
  makeTree(join(scratch, "two"), "reverse");
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("canonicalTar", () => {
  test("deterministic: the same tree twice, and a twin tree built in reverse order, give identical bytes", async () => {
    const a = await tarBytes(join(scratch, "one"));
    const b = await tarBytes(join(scratch, "one"));
    const c = await tarBytes(join(scratch, "two"));
    expect(a.length % 512).toBe(0);
    expect(createHash("sha256").update(a).digest("hex")).toBe(createHash("sha256").update(b).digest("hex"));
    expect(createHash("sha256").update(a).digest("hex")).toBe(createHash("sha256").update(c).digest("hex"));
  });

  test("entries depth-first, each folder's children in byte order, folders before their content", async () => {
    const { entries } = await readWithTarStream(await tarBytes(join(scratch, "one")));
    const names = entries.map((e) => e.name);
    expect(names[0]).toBe("./");
    // Expected order from a walk that sorts names by their bytes.
    const expected: string[] = [];
    const walk = (dir: string, prefix: string) => {
      const children = readdirSync(dir).sort((x: string, y: string) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      for (const name of children) {
        const st = lstatSync(join(dir, name));
        expected.push(st.isDirectory() ? `${prefix}${name}/` : `${prefix}${name}`);
        if (st.isDirectory()) walk(join(dir, name), `${prefix}${name}/`);
      }
    };
    walk(join(scratch, "one"), "./");
    expect(names.slice(1)).toEqual(expected);
    expect(names.indexOf("./Z-upper")).toBeLessThan(names.indexOf("./a.txt"));
  });

  test("mtimes clamped to SOURCE_DATE_EPOCH, older ones kept", async () => {
    const { entries } = await readWithTarStream(await tarBytes(join(scratch, "one")));
    const by = new Map(entries.map((e) => [e.name, e]));
    expect(by.get("./old")!.mtime).toBe(OLD);
    expect(by.get("./a.txt")!.mtime).toBe(SDE);
    expect(Math.max(...entries.map((e) => e.mtime))).toBe(SDE);
  });

  test("numeric owners only, modes exact (mode 0, setuid), links and devices", async () => {
    const bytes = await tarBytes(join(scratch, "one"));
    const { entries } = await readWithTarStream(bytes);
    const by = new Map(entries.map((e) => [e.name, e]));
    expect(by.get("./owned")).toMatchObject({ uid: 1234, gid: 5678 });
    expect(by.get("./secret")).toMatchObject({ mode: 0, type: "file", size: 10 });
    expect(by.get("./setuid")!.mode).toBe(0o4755);
    expect(by.get("./link-to-passwd")).toMatchObject({ type: "symlink", linkname: "etc/passwd" });
    expect(by.get("./long-link")).toMatchObject({ type: "symlink", linkname: `/${"t".repeat(150)}` });
    expect(by.get("./hard-a")).toMatchObject({ type: "file", size: 13 });
    expect(by.get("./hard-b")).toMatchObject({ type: "link", linkname: "./hard-a", size: 0 });
    expect(by.get("./fifo")!.type).toBe("fifo");
    expect(by.get("./dev/null")!.type).toBe("character-device");
    // No user or group names anywhere: the uname/gname fields are empty.
    for (let off = 0; off + 512 <= bytes.length; off += 512) {
      const block = bytes.subarray(off, off + 512);
      if (block.toString("latin1", 257, 262) !== "ustar") continue;
      expect(block.subarray(265, 297).every((b) => b === 0)).toBe(true);
      expect(block.subarray(297, 329).every((b) => b === 0)).toBe(true);
    }
  });

  test("long and non-ASCII names survive", async () => {
    const { entries } = await readWithTarStream(await tarBytes(join(scratch, "one")));
    const names = entries.map((e) => e.name);
    expect(names).toContain(`./${LONG_DIR}/${LONG_NAME}`);
    expect(names).toContain(`./${HUGE_NAME}/f`);
    expect(names).toContain("./ünïcødé");
  });

  test("GNU tar extracts it faithfully: contents, owners, modes, capabilities, binary xattrs, hard links, devices", async () => {
    const bytes = await tarBytes(join(scratch, "one"));
    const file = join(scratch, "one.tar");
    writeFileSync(file, bytes);
    const out = join(scratch, "extracted");
    mkdirSync(out);
    const r = spawnSync("tar", ["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", file, "-C", out]);
    expect(r.stderr.toString()).toBe("");
    expect(r.status).toBe(0);
    const src = join(scratch, "one");
    expect(readFileSync(join(out, LONG_DIR, LONG_NAME), "utf8")).toBe("long\n");
    expect(readFileSync(join(out, HUGE_NAME, "f"), "utf8")).toBe("huge path\n");
    expect(lstatSync(join(out, "owned"))).toMatchObject({ uid: 1234, gid: 5678 });
    expect(lstatSync(join(out, "secret")).mode & 0o7777).toBe(0);
    expect(lstatSync(join(out, "setuid")).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(out, "hard-a")).ino).toBe(lstatSync(join(out, "hard-b")).ino);
    expect(lstatSync(join(out, "dev/null")).rdev).toBe(lstatSync(join(src, "dev/null")).rdev);
    expect(execFileSync("getcap", [join(out, "ping")]).toString()).toContain("cap_net_raw=ep");
    const xattr = execFileSync("getfattr", ["--absolute-names", "--only-values", "-n", "user.note", join(out, "ping")]);
    expect([...xattr]).toEqual([0, 1, 2, 255]);
    expect(Math.floor(lstatSync(join(out, "old")).mtimeMs / 1000)).toBe(OLD);
    // GNU tar's own listing agrees on the number of entries.
    const listed = execFileSync("tar", ["-tf", file]).toString().trim().split("\n");
    const { entries } = await readWithTarStream(bytes);
    expect(listed.length).toBe(entries.length);
  });
});
