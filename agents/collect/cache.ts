import { closeSync, constants, copyFileSync, cpSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { log } from "../../lib/log.ts";
import { pyDumps } from "../pyjson/dumps.ts";
import { parseJson } from "../pyjson/parse.ts";
import { pyEqual, type PyValue } from "../pyjson/value.ts";
import { isSafeOutputName } from "./deployments.ts";

/**
 * os-collect-config's cache, file for file: per output NAME,
 *   NAME.json       what the last poll collected (rewritten every poll)
 *   NAME.json.orig  what was collected the very first time
 *   NAME.json.last  what the command last ran successfully with (the commit)
 * plus os_config_files.json (the outputs of the last changed poll, in
 * precedence order) and a copy of the whole folder in the backup folder.
 * Files are JSON as Python's json.dumps(indent=1) writes them, mode 0600
 * (they may hold credentials), replaced atomically and fsynced.
 */
export class Cache {
  constructor(
    readonly dir: string,
    readonly backupDir: string,
  ) {}

  path(name: string): string {
    if (!isSafeOutputName(name)) throw new Error(`output name ${JSON.stringify(name)} cannot be a cache file name`);
    return join(this.dir, `${name}.json`);
  }

  private writeAtomically(dest: string, text: string) {
    mkdirSync(dirname(dest), { recursive: true });
    const tmp = join(dirname(dest), `.tmp.${basename(dest)}.${process.pid}`);
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      const data = Buffer.from(text, "utf8");
      for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, dest);
  }

  /** Store one output; true if it differs from what the command last ran with. */
  store(name: string, content: PyValue): { changed: boolean; path: string } {
    const path = this.path(name);
    this.writeAtomically(path, pyDumps(content, { indent: 1 }));
    let changed = false;
    if (!existsSync(`${path}.orig`)) {
      copyFileSync(path, `${path}.orig`);
      changed = true;
    }
    if (!changed) changed = !this.sameAsLast(name, content);
    return { changed, path };
  }

  private sameAsLast(name: string, content: PyValue): boolean {
    const last = `${this.path(name)}.last`;
    if (!existsSync(last)) return false;
    try {
      return pyEqual(parseJson(readFileSync(last, "utf8")), content);
    } catch (e) {
      // The original crashed here (LP#1678328); an unreadable commit is simply "changed".
      log.warn(`${last} is unreadable (${(e as Error).message}); treating ${name} as changed`);
      return false;
    }
  }

  /** After the command succeeded: remember what it ran with. */
  commit(name: string) {
    const path = this.path(name);
    if (!existsSync(path)) return;
    const text = readFileSync(path, "utf8");
    this.writeAtomically(`${path}.last`, text);
  }

  /** The last stored content of an output (to stand in for a source that is down). */
  read(name: string): PyValue | undefined {
    try {
      return parseJson(readFileSync(this.path(name), "utf8"));
    } catch {
      return undefined;
    }
  }

  /** os_config_files.json: the outputs' cache files, in precedence order. */
  storeList(names: string[]): string {
    const dest = join(this.dir, "os_config_files.json");
    this.writeAtomically(dest, pyDumps(names.map((n) => this.path(n))));
    return dest;
  }

  /** Replace the backup folder with a copy of the cache (before the command runs, so it holds the old .last files). */
  backup() {
    rmSync(this.backupDir, { recursive: true, force: true });
    if (existsSync(this.dir)) cpSync(this.dir, this.backupDir, { recursive: true, preserveTimestamps: true });
  }
}
