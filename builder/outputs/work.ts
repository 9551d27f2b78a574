import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { publishAtomically } from "../../lib/atomic.ts";
import { log } from "../../lib/log.ts";
import { capture } from "../../lib/run.ts";
import { copySparseHashed } from "../../lib/sparse.ts";
import type { BuildOptions } from "../options.ts";
import type { Artifact } from "./types.ts";

/**
 * Shared, lazily computed intermediate results of one build's outputs (the
 * canonical tar, the extracted tree, the root filesystem, the whole disk):
 * each is made at most once, in the build's scratch space, whichever outputs
 * need it. Finished files become outputs through `emit`, atomically.
 */
export class OutputWork {
  readonly artifacts: Artifact[] = [];
  private readonly memo = new Map<string, Promise<unknown>>();

  constructor(
    readonly options: BuildOptions,
    /** The finished root tree. */
    readonly root: string,
    /** Scratch space inside the build's work folder. */
    readonly scratch: string,
    /** Output path without extension (-o), absolute. */
    readonly base: string,
    /** The merged hooks tree ($TMP_HOOKS_PATH): element data that outputs read (binary-deps.d, …). */
    readonly hooks?: string,
  ) {
    mkdirSync(scratch, { recursive: true });
  }

  scratchPath(name: string) {
    return join(this.scratch, name);
  }

  once<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let p = this.memo.get(key) as Promise<T> | undefined;
    if (!p) {
      p = log.step(key, fn);
      this.memo.set(key, p);
    }
    return p;
  }

  /** Publish a finished scratch file as `BASE.ext`, hashing it on the way. */
  async emit(type: string, ext: string, file: string): Promise<Artifact> {
    const existing = this.artifacts.find((a) => a.type === type);
    if (existing) return existing;
    const path = `${this.base}.${ext}`;
    let result = { sha256: "", size: 0 };
    await publishAtomically(path, async (target) => {
      result = copySparseHashed(file, target);
    });
    const artifact = { type, path, ...result };
    log.bytes(artifact.size);
    this.artifacts.push(artifact);
    if (this.options.checksum) await writeChecksums(path, artifact.sha256);
    return artifact;
  }
}

/** DIB's --checksum: NAME.ext.md5 and NAME.ext.sha256 in the coreutils format. */
async function writeChecksums(path: string, sha256: string) {
  const name = basename(path);
  const md5 = (await capture("md5sum", [path], { what: `md5sum ${name}` })).split(" ")[0];
  await publishAtomically(`${path}.sha256`, async (t) => void (await Bun.write(t, `${sha256}  ${name}\n`)));
  await publishAtomically(`${path}.md5`, async (t) => void (await Bun.write(t, `${md5}  ${name}\n`)));
}
