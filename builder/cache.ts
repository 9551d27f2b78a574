import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { publishAtomically } from "../lib/atomic.ts";
import { run } from "../lib/run.ts";

/**
 * Build snapshots by content hash. Every hook has a key: the hash of the key
 * before it and of what it is (phase, name, its element's files). Unchanged
 * inputs give unchanged keys, so a rebuild restores the deepest snapshot whose
 * key still matches and runs only the hooks after it — the base root after a
 * 30 s mmdebstrap is one such snapshot. A snapshot is a plain tar of the root
 * and of the hooks tree (extra-data.d writes there), published atomically.
 */
export class LayerCache {
  readonly dir: string;

  constructor(
    imageCache: string,
    private readonly maxBytes = Number(process.env.OOO_CACHE_MAX_GB ?? 20) * 2 ** 30,
  ) {
    this.dir = join(imageCache, "ooo-layers");
    mkdirSync(this.dir, { recursive: true });
  }

  private path(key: string) {
    return join(this.dir, `${key}.tar`);
  }

  has(key: string): boolean {
    return existsSync(this.path(key));
  }

  /** Unpack snapshot `key` into `workDir` (which holds root/ and hooks/). */
  async restore(key: string, workDir: string, parts: string[]): Promise<void> {
    for (const p of parts) rmSync(join(workDir, p), { recursive: true, force: true });
    await run("tar", ["--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-xpf", this.path(key), "-C", workDir], {
      what: `restoring cached layer ${key.slice(0, 12)}`,
    });
    const now = new Date();
    utimesSync(this.path(key), now, now); // keeps recently used layers from eviction
  }

  async save(key: string, workDir: string, parts: string[]): Promise<void> {
    await publishAtomically(this.path(key), (path) =>
      run("tar", ["--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-cf", path, "-C", workDir, ...parts], {
        what: `saving layer ${key.slice(0, 12)}`,
      }),
    );
    this.evict();
  }

  /**
   * Oldest-used layers go first once the cache passes its size limit. Other
   * builds share the folder and evict too: a layer that vanishes meanwhile
   * (or a link to one) is simply not counted.
   */
  private evict() {
    const layers = readdirSync(this.dir)
      .filter((n) => n.endsWith(".tar") && !n.startsWith("."))
      .flatMap((n) => {
        const st = statSync(join(this.dir, n), { throwIfNoEntry: false });
        return st ? [{ path: join(this.dir, n), st }] : [];
      })
      .sort((a, b) => b.st.mtimeMs - a.st.mtimeMs);
    let total = 0;
    for (const layer of layers) {
      total += layer.st.size;
      if (total > this.maxBytes) rmSync(layer.path, { force: true });
    }
  }
}

/** Chain a key: sha256 over the previous key and the parts, unambiguously separated. */
export function chainKey(previous: string, ...parts: string[]): string {
  const h = createHash("sha256");
  h.update(previous);
  for (const p of parts) h.update(`\0${p.length}:${p}`);
  return h.digest("hex");
}
