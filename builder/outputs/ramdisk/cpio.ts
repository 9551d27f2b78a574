import { closeSync, existsSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync, utimesSync, writeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { run } from "../../../lib/run.ts";
import { sha256File } from "../../../lib/sparse.ts";
import type { RamdiskTree } from "./tree.ts";

/**
 * The initramfs: newc cpio archives (GNU cpio: sorted entries, owners 0:0,
 * inode numbers renumbered, device numbers dropped, every mtime clamped to
 * SOURCE_DATE_EPOCH), each compressed with zstd, one after the other — the
 * kernel unpacks concatenated archives in order (as it does early
 * microcode), skipping the zeros that align each to 4 bytes. Files over
 * BIG_FILE bytes (the agent: ~110 MB, ~2/3 of the ramdisk) get an archive
 * of their own, and every compressed archive is
 * kept in the image cache by the sha256 of its cpio: zstd -19 takes minutes
 * on such a file, and a rebuild that did not change it pays nothing.
 * zstd's output does not depend on its thread count, so -T0 keeps it
 * reproducible across hosts.
 */
export const BIG_FILE = 16 * 2 ** 20;
/** Kept compressed archives (most recently used first); older ones are removed. */
const CACHE_KEEP = 8;

export interface SegmentInfo {
  entries: number;
  cpioBytes: number;
  bytes: number;
  cached: boolean;
}

export function clampMtimes(tree: RamdiskTree, epoch: number) {
  for (const rel of ["", ...tree.entries()]) {
    const path = join(tree.dir, rel);
    const st = lstatSync(path);
    if (st.mtimeMs / 1000 > epoch) lutimesSync(path, epoch, epoch);
  }
}

export async function writeInitramfs(o: { tree: RamdiskTree; out: string; scratch: string; cacheDir: string; level: number }): Promise<SegmentInfo[]> {
  const entries = o.tree.entries();
  const isBig = (rel: string) => {
    const st = lstatSync(join(o.tree.dir, rel));
    return st.isFile() && st.size > BIG_FILE;
  };
  const big = entries.filter(isBig);
  const segments = [entries.filter((e) => !big.includes(e)), ...big.map((b) => [b])];
  mkdirSync(o.cacheDir, { recursive: true });

  const infos: SegmentInfo[] = [];
  const outFd = openSync(o.out, "w");
  try {
    for (const [i, names] of segments.entries()) {
      const cpio = join(o.scratch, `initramfs-${i}.cpio`);
      await run("cpio", ["--create", "--format=newc", "--owner=0:0", "--reproducible", "--quiet", `--file=${cpio}`], {
        cwd: o.tree.dir,
        input: names.join("\n") + "\n",
        what: "writing the initramfs archive (cpio)",
        echo: false,
      });
      const { sha256, size } = sha256File(cpio);
      const cached = join(o.cacheDir, `${sha256}.zstd${o.level}`);
      const hit = existsSync(cached);
      if (hit) utimesSync(cached, new Date(), new Date());
      else {
        // Not the pid: every build runs as pid 1 of its own namespace.
        const tmp = `${cached}.${randomBytes(6).toString("hex")}.tmp`;
        await run("zstd", ["-q", `-${o.level}`, "-T0", "--no-progress", "-f", "-o", tmp, cpio], { what: `compressing the initramfs (zstd -${o.level})`, echo: false });
        renameSync(tmp, cached);
      }
      let bytes = appendFile(outFd, cached);
      // Whatever follows (another archive here, or one a boot loader appends, such as CPU microcode)
      // starts 4-byte aligned: the kernel looks for an uncompressed cpio only there.
      const pad = (4 - (bytes % 4)) % 4;
      if (pad) bytes += writeSync(outFd, Buffer.alloc(pad));
      infos.push({ entries: names.length, cpioBytes: size, bytes, cached: hit });
      rmSync(cpio);
    }
  } finally {
    closeSync(outFd);
  }
  pruneCache(o.cacheDir);
  return infos;
}

function appendFile(outFd: number, file: string): number {
  const fd = openSync(file, "r");
  const buf = Buffer.allocUnsafe(1 << 20);
  let total = 0;
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; total += n) writeSync(outFd, buf, 0, n);
  } finally {
    closeSync(fd);
  }
  return total;
}

function pruneCache(dir: string) {
  const files = readdirSync(dir)
    .filter((f) => !f.endsWith(".tmp"))
    .map((f) => ({ path: join(dir, f), at: statSync(join(dir, f)).mtimeMs }))
    .sort((a, b) => b.at - a.at);
  for (const old of files.slice(CACHE_KEEP)) rmSync(old.path, { force: true });
}

