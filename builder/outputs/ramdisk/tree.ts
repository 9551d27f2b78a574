import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { RamdiskIncomplete } from "../../errors.ts";
import { resolveInRoot } from "../in-root.ts";
import { elfNeeds, librarySearchPath } from "./elf.ts";

/**
 * The ramdisk's files, gathered in a folder before they become a cpio
 * archive: copied from the built root at the same paths, with the symbolic
 * links on the way (a merged-/usr root's /bin → usr/bin stays a link), so
 * that programs find their loader and libraries where the root had them.
 */
export class RamdiskTree {
  /** Bytes added, by what they are (printed at the end: what the ramdisk's size is made of). */
  readonly bytes = new Map<string, number>();

  constructor(
    readonly root: string,
    readonly dir: string,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  /** The root's top-level links (a merged-/usr root's bin → usr/bin, lib64 → usr/lib64 …), so that /bin/sh-style paths work. */
  mirrorTopLevelLinks() {
    for (const name of readdirSync(this.root)) {
      const at = join(this.dir, name);
      if (isLink(join(this.root, name)) && !existsSync(at) && !isLink(at)) symlinkSync(readlinkSync(join(this.root, name)), at);
    }
  }

  private count(kind: string, n: number) {
    this.bytes.set(kind, (this.bytes.get(kind) ?? 0) + n);
  }

  /** Copy `path` of the image to the same place; returns where it resolved (relative), or undefined if the root lacks it. */
  copyFromRoot(path: string, kind: string): string | undefined {
    const rel = resolveInRoot(this.root, path, (link, target) => {
      const at = join(this.dir, link);
      if (existsSync(at) || isLink(at)) return;
      mkdirSync(dirname(at), { recursive: true });
      symlinkSync(target, at);
    });
    if (rel === undefined) return undefined;
    const from = join(this.root, rel);
    const to = join(this.dir, rel);
    const stat = statSync(from);
    if (stat.isDirectory()) {
      mkdirSync(to, { recursive: true });
      return rel;
    }
    if (existsSync(to)) return rel;
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(from, to);
    chmodSync(to, stat.mode & 0o7777);
    this.count(kind, stat.size);
    return rel;
  }

  write(rel: string, content: string | Buffer, mode: number, kind = "other") {
    const to = join(this.dir, rel);
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, content);
    chmodSync(to, mode);
    this.count(kind, Buffer.byteLength(content));
  }

  mkdir(rel: string, mode = 0o755) {
    mkdirSync(join(this.dir, rel), { recursive: true });
    chmodSync(join(this.dir, rel), mode);
  }

  /**
   * Programs by name (searched on the root's PATH) or path, with their
   * dynamic loader and every library they need, transitively (DIB's
   * binary-deps.d, which its ramdisk-base resolves with ldd in the chroot).
   */
  async addPrograms(names: string[], arch: string): Promise<string[]> {
    const placed: string[] = [];
    const queue: string[] = [];
    for (const name of names) {
      const found = name.includes("/") ? this.copyFromRoot(name, "programs") : this.firstFound(PATH.map((d) => `${d}/${name}`), "programs");
      if (!found) throw new RamdiskIncomplete(`the program ${name} (binary-deps.d)`, `is not in the root (searched ${PATH.join(":")})`);
      placed.push(found);
      queue.push(found);
    }
    const libDirs = librarySearchPath(arch);
    const done = new Set<string>();
    while (queue.length) {
      const rel = queue.shift()!;
      if (done.has(rel)) continue;
      done.add(rel);
      const needs = await elfNeeds(join(this.dir, rel));
      if (needs.interpreter) {
        const loader = this.copyFromRoot(needs.interpreter, "libraries");
        if (!loader) throw new RamdiskIncomplete(`the dynamic loader ${needs.interpreter}`, `that /${rel} needs is not in the root`);
      }
      for (const soname of needs.needed) {
        const lib = this.firstFound(libDirs.map((d) => `${d}/${soname}`), "libraries");
        if (!lib) throw new RamdiskIncomplete(`the library ${soname}`, `that /${rel} needs is in none of ${libDirs.join(", ")}`);
        queue.push(lib);
      }
    }
    return placed;
  }

  /** The first of `paths` the root has, copied. */
  private firstFound(paths: string[], kind: string): string | undefined {
    for (const p of paths) if (resolveInRoot(this.root, p) !== undefined) return this.copyFromRoot(p, kind);
    return undefined;
  }

  /**
   * Folders get the root's mode where the root has them, else 0755: not
   * whatever the build's umask made of them (a reproducible ramdisk does not
   * depend on the shell it was built from).
   */
  settleFolderModes() {
    for (const rel of this.entries()) {
      if (!lstatSync(join(this.dir, rel)).isDirectory()) continue;
      let mode = 0o755;
      try {
        const inRoot = lstatSync(join(this.root, rel));
        if (inRoot.isDirectory()) mode = inRoot.mode & 0o7777;
      } catch {}
      chmodSync(join(this.dir, rel), mode);
    }
  }

  /** Every entry, relative, sorted bytewise (directories before what they hold), as a cpio list wants them. */
  entries(): string[] {
    const out: string[] = [];
    const walk = (rel: string) => {
      for (const name of readdirSync(join(this.dir, rel)).sort(bytewise)) {
        const child = rel ? `${rel}/${name}` : name;
        out.push(child);
        const st = lstatSync(join(this.dir, child));
        if (st.isDirectory()) walk(child);
      }
    };
    walk("");
    return out;
  }
}

/** The root's PATH for programs named without a folder, as a root shell's. */
const PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

const bytewise = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

function isLink(path: string) {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Words of every file in a hooks-tree folder (binary-deps.d, ramdisk-modules.d): one or more a line, `#` starts a comment. */
export function listedWords(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort(bytewise)
    .flatMap((f) =>
      readFileSync(join(dir, f), "utf8")
        .split("\n")
        .flatMap((line) => line.replace(/#.*/, "").trim().split(/\s+/).filter(Boolean)),
    );
}
