import { closeSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { MissingRequirement } from "../../lib/errors.ts";
import { CommandFailed, run } from "../../lib/run.ts";
import type { Filesystem } from "../../wire/boot.ts";
import { ImageTooSmall, UnsupportedFileName } from "../errors.ts";

type MkfsOptions = Omit<Parameters<typeof mkfsExt>[0], "type" | "label">;

/**
 * The filesystem of a partition the disk contract (wire/boot.ts) gives one:
 * empty, or made from `tree`. `uuid` in the filesystem's own form
 * (uuid.ts: fsUuid).
 */
export async function mkfsFor(partition: { fs: Filesystem; label: string }, options: MkfsOptions): Promise<void> {
  switch (partition.fs) {
    case "ext4":
      return mkfsExt({ ...options, type: partition.fs, label: partition.label });
    case "vfat":
      return mkfsVfat({ ...options, label: partition.label });
  }
}

/**
 * Build an ext2/ext4 filesystem image from a tree (mkfs -d): no loop device,
 * no mount. UUID, hash seed and the times mkfs takes from the clock are
 * fixed (E2FSPROGS_FAKE_TIME). mkfs copies each file's atime and ctime from
 * the tree, and a ctime is whenever the file was extracted — so afterwards
 * debugfs sets both to the file's (clamped) mtime. Same tree, same bytes.
 */
export async function mkfsExt(options: {
  file: string;
  size: number;
  type: "ext4" | "ext2";
  label: string;
  uuid: string;
  tree?: string;
  sourceDateEpoch: number;
  /** Bytes the tree needs, for the error if it does not fit. */
  neededBytes?: number;
}) {
  closeSync(openSync(options.file, "w"));
  await run("truncate", ["-s", String(options.size), options.file]);
  const args = [
    "-t", options.type,
    "-q",
    "-F",
    "-L", options.label,
    "-U", options.uuid,
    "-m", "0",
    "-E", `hash_seed=${options.uuid},root_owner=0:0`,
    ...(options.tree ? ["-d", options.tree] : []),
    options.file,
  ];
  try {
    await run("mkfs.ext4", args, {
      env: { E2FSPROGS_FAKE_TIME: String(options.sourceDateEpoch) },
      what: `making the ${options.label} filesystem (mkfs.${options.type})`,
      echo: false,
    });
  } catch (e) {
    if (e instanceof CommandFailed && e.tail.some((l) => /No space left|Could not allocate|too big|not enough space/i.test(l)))
      throw new ImageTooSmall(options.neededBytes ?? options.size + 1, options.size, options.label);
    throw e;
  }
  if (options.tree) await pinInodeTimes(options.file, options.tree, options.sourceDateEpoch);
}

/** One debugfs session: every inode's times become its mtime, clamped to SOURCE_DATE_EPOCH. */
async function pinInodeTimes(file: string, tree: string, sourceDateEpoch: number) {
  const commands: string[] = [];
  // debugfs's parser: double quotes group words, with no escapes inside.
  const quote = (p: string) => {
    if (!/[\s"]/.test(p)) return p;
    if (p.includes('"') || p.includes("\n")) throw new UnsupportedFileName(p);
    return `"${p}"`;
  };
  const walk = (dir: string, rel: string) => {
    const st = lstatSync(dir);
    const t = Math.min(Math.floor(st.mtimeMs / 1000), sourceDateEpoch);
    const path = rel || "/";
    commands.push(`sif ${quote(path)} atime @${t}`, `sif ${quote(path)} ctime @${t}`, `sif ${quote(path)} mtime @${t}`);
    if (!st.isDirectory()) return;
    for (const name of readdirSync(dir).sort()) {
      const child = join(dir, name);
      if (lstatSync(child).isDirectory()) walk(child, `${rel}/${name}`);
      else {
        const cst = lstatSync(child);
        const ct = Math.min(Math.floor(cst.mtimeMs / 1000), sourceDateEpoch);
        const p = quote(`${rel}/${name}`);
        commands.push(`sif ${p} atime @${ct}`, `sif ${p} ctime @${ct}`, `sif ${p} mtime @${ct}`);
      }
    }
  };
  walk(tree, "");
  const r = await execa("debugfs", ["-w", "-f", "-", file], {
    input: commands.join("\n") + "\n",
    env: { E2FSPROGS_FAKE_TIME: String(sourceDateEpoch) }, // else the superblock's write time is now
    all: true,
    reject: false,
  });
  const out = String(r.all);
  if (r.exitCode !== 0) throw new CommandFailed("debugfs", r.exitCode ?? "killed", out.split("\n").slice(-10), "pinning inode times (debugfs)");
  // debugfs reports a bad command and goes on with exit 0: any such line is a bug here.
  const problems = out.split("\n").filter((l) => l && !l.startsWith("debugfs"));
  if (problems.length) throw new Error(`debugfs could not pin inode times: ${problems.slice(0, 5).join("; ")}`);
}

/** Copy a filesystem image into the disk image at `offset`, keeping holes. */
export async function writeInto(disk: string, image: string, offset: number) {
  await run("dd", [`if=${image}`, `of=${disk}`, "bs=1M", `seek=${offset}`, "oflag=seek_bytes", "conv=notrunc,sparse", "status=none"], {
    what: "writing a partition into the disk image",
  });
}

/** FAT keeps times from 1980 to 2107. */
const FAT_EPOCH = Date.UTC(1980, 0, 1) / 1000;
const FAT_END = Date.UTC(2107, 11, 31) / 1000;

/**
 * mtools as a builder needs it: no user's or host's settings that change
 * names (the environment overrides /etc/mtools.conf; no ~/.mtoolsrc), and
 * UTC, since FAT stores local times.
 */
const MTOOLS_ENV = {
  PATH: process.env.PATH,
  TZ: "UTC",
  HOME: "/nonexistent",
  MTOOLSRC: "/dev/null",
  MTOOLS_NO_VFAT: "0",
  MTOOLS_LOWER_CASE: "0",
  MTOOLS_NAME_NUMERIC_TAIL: "1",
};

/**
 * A FAT32 filesystem image made from a tree with mkfs.vfat and mtools: no
 * loop device, no mount (as systemd-repart fills an ESP). Same tree, same
 * bytes: mkfs.vfat --invariant fixes what it would take from the clock or
 * at random, the volume ID is `uuid` (from the image digest, as the ext4
 * UUIDs are), and every file and directory gets SOURCE_DATE_EPOCH as its
 * time (mcopy -m copies the source's mtime into all of an entry's times,
 * "." and ".." included). mcopy -s would walk a directory in readdir order,
 * which differs between filesystems: each directory is copied empty (a
 * stand-in of the same name) and its entries one mcopy per directory, in
 * sorted order.
 */
export async function mkfsVfat(options: { file: string; size: number; label: string; uuid: string; tree?: string; sourceDateEpoch: number }) {
  const id = options.uuid.replace("-", "");
  if (!/^[0-9A-F]{8}$/i.test(id)) throw new Error(`bug: ${options.uuid} is no FAT volume ID (XXXX-XXXX)`);
  if (!Bun.which("mkfs.vfat") || !Bun.which("mcopy"))
    throw new MissingRequirement("mkfs.vfat and mcopy (for the EFI system partition)", "apt-get install dosfstools mtools");
  rmSync(options.file, { force: true }); // -C makes the file, and will not overwrite one
  await run("mkfs.vfat", ["--invariant", "-F", "32", "-S", "512", "-s", "1", "-i", id, "-n", options.label, "-C", options.file, String(Math.floor(options.size / 1024))], {
    what: `making the ${options.label} filesystem (mkfs.vfat)`,
    echo: false,
  });
  if (!options.tree) return;
  const time = Math.max(FAT_EPOCH, Math.min(options.sourceDateEpoch, FAT_END));
  const stage = mkdtempSync(join(options.file, "..", "fat-stage-"));
  try {
    let standIns = 0;
    const copyLevel = async (rel: string): Promise<void> => {
      const names = readdirSync(join(options.tree!, rel)).sort();
      if (!names.length) return;
      const sources = names.map((name) => {
        const path = join(options.tree!, rel, name);
        const st = lstatSync(path);
        if (st.isDirectory()) {
          const standIn = join(stage, String(standIns++), name);
          mkdirSync(standIn, { recursive: true });
          utimesSync(standIn, time, time);
          return standIn;
        }
        if (!st.isFile()) throw new Error(`bug: ${path} is neither file nor directory; FAT holds only those`);
        utimesSync(path, time, time);
        return path;
      });
      await run("mcopy", ["-s", "-Q", "-m", "-i", options.file, ...sources, `::/${rel}`], {
        cleanEnv: true,
        env: MTOOLS_ENV,
        what: `copying files into the ${options.label} filesystem (mcopy)`,
        echo: false,
      });
      for (const name of names) if (lstatSync(join(options.tree!, rel, name)).isDirectory()) await copyLevel(rel ? `${rel}/${name}` : name);
    };
    await copyLevel("");
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
