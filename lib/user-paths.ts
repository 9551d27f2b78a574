import { accessSync, constants, existsSync, mkdirSync, rmdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { PathProblem, OutputExists } from "./errors.ts";

/**
 * Paths a user gave (flags, arguments, stack and config files), checked
 * before a command acts on them, so that a typo is refused with its flag
 * and what is wrong — never found half-way through, never an "internal
 * error". `what` is how the user named it: "--logfile", "-o", "the stack
 * file". Whatever slips past these (a disk that fills up, a file removed
 * meanwhile) is turned into the same PathProblem by asUserError
 * (lib/errors.ts).
 *
 * The output policy, the same for every command that writes files a user
 * names (build-image -o, store fetch -o, key generate): an output's folder
 * is made when missing; a folder is never an output; an existing file is
 * replaced only with --force (a key never), and then atomically — until the
 * new one is complete, the old one stays.
 */

const kind = (path: string) => {
  try {
    return statSync(path).isDirectory() ? "folder" : "file";
  } catch {
    return undefined;
  }
};

function reason(e: unknown): string {
  switch ((e as { code?: string }).code) {
    case "EROFS":
      return "it is on a read-only filesystem";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    default:
      return (e as Error).message;
  }
}

/** A file to read: it exists, is not a folder, and may be read. */
export function inputFile(path: string, what: string, hint?: string): string {
  const k = kind(path);
  if (k === undefined) throw new PathProblem(path, missing(path), what, hint);
  if (k === "folder") throw new PathProblem(path, "is a folder, not a file", what);
  try {
    accessSync(path, constants.R_OK);
  } catch (e) {
    throw new PathProblem(path, `cannot be read: ${reason(e)}`, what);
  }
  return resolve(path);
}

/** A folder to read: it exists and is a folder. */
export function inputFolder(path: string, what: string): string {
  const k = kind(path);
  if (k === undefined) throw new PathProblem(path, missing(path), what);
  if (k === "file") throw new PathProblem(path, "is a file, not a folder", what);
  return resolve(path);
}

/** A file or a folder to read (a seed, a device). */
export function inputPath(path: string, what: string): string {
  if (!existsSync(path)) throw new PathProblem(path, missing(path), what);
  return resolve(path);
}

function missing(path: string): string {
  const parent = nearestExisting(resolve(path));
  return parent !== dirname(resolve(path)) && kind(parent) === "file"
    ? `does not exist (${parent} is a file, not a folder)`
    : "does not exist";
}

function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

/** Why `abs` is no folder this command can write in (made when missing), or undefined. */
function folderProblem(abs: string): string | undefined {
  const k = kind(abs);
  if (k === "file") return `${abs} is a file, not a folder`;
  const at = k === "folder" ? abs : nearestExisting(abs);
  if (kind(at) === "file") return `${at} is a file, not a folder`;
  try {
    accessSync(at, constants.W_OK);
  } catch (e) {
    return at === abs ? `${abs} cannot be written to: ${reason(e)}` : `${abs} cannot be made in ${at}: ${reason(e)}`;
  }
  return undefined;
}

/**
 * A folder this command may write into, made when missing (a state folder,
 * a store, a cache): not a file, and the folder it would be made in is a
 * folder it may write to.
 */
export function folderToWrite(path: string, what: string): string {
  const abs = resolve(path);
  const problem = folderProblem(abs);
  if (problem) throw new PathProblem(path, problem.replace(`${abs} `, ""), what);
  return abs;
}

/**
 * Files a command is about to write (one output may be several files:
 * NAME.tar, NAME.raw, NAME.manifest.json). Checked together, before any
 * work: none is a folder, their folder can be made or written, and none
 * exists unless `force`. Messages name the paths as given.
 */
export function outputFiles(paths: string[], what: string, options: { force?: boolean; forceFlag?: string } = {}): string[] {
  const abs = paths.map((p) => resolve(p));
  abs.forEach((p, i) => {
    if (paths[i]!.endsWith("/") || kind(p) === "folder") throw new PathProblem(paths[i]!, "is a folder; name a file (in it, or beside it)", what);
  });
  for (const [i, p] of abs.entries()) {
    const problem = folderProblem(dirname(p));
    if (problem) throw new PathProblem(paths[i]!, `its folder ${problem}`, what);
  }
  const existing = paths.filter((_, i) => kind(abs[i]!) === "file");
  if (existing.length && !options.force) throw new OutputExists(existing, options.forceFlag);
  return abs;
}

/** One output file (see outputFiles). */
export function outputFile(path: string, what: string, options: { force?: boolean; forceFlag?: string } = {}): string {
  return outputFiles([path], what, options)[0]!;
}

/** The outermost folder of `path` that does not exist yet (what making it would make), or undefined. */
export function firstMissing(path: string): string | undefined {
  let made: string | undefined;
  for (let d = resolve(path); !existsSync(d) && dirname(d) !== d; d = dirname(d)) made = d;
  return made;
}

/**
 * Make the folder an output goes in (outputs' folders are made when
 * missing); returns how to take back what it made, for a command that then
 * fails before writing — a typo'd path leaves no empty folders behind.
 */
export function makeFolderFor(path: string): () => void {
  const dir = dirname(resolve(path));
  const first = mkdirSync(dir, { recursive: true });
  return () => {
    if (first === undefined) return;
    for (let d = dir; d.length >= first.length; d = dirname(d)) {
      try {
        rmdirSync(d);
      } catch {
        return;
      }
    }
  };
}
