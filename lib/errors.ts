import { statSync } from "node:fs";

/**
 * Exit codes, one per class of outcome and the same for every ooo command
 * (the README's "Exit codes" table is made from this list, and checked
 * against it). Scripts can tell "fix the command line" (2) from "it ran and
 * failed" (1) without reading messages. The node agents keep the originals'
 * codes where scripts depend on them (agents/README.md).
 */
export const EXIT = {
  ok: { code: 0, meaning: "done" },
  failed: { code: 1, meaning: "the command ran and failed: a hook, a node, a boot test, the store's answer, an image that is not there" },
  usage: {
    code: 2,
    meaning: "nothing was done: a flag, argument, path or input file is wrong (the message names it); also a refused overwrite",
  },
  refused: { code: 3, meaning: "not allowed: the token may not do this, or the image is not signed by a trusted key" },
  missing: { code: 4, meaning: "the host lacks what the command needs: root, a Debian package, qemu, a device, memory for the stack's VMs" },
  internal: { code: 70, meaning: "a bug in ooo: the message says how to report it" },
  interrupted: { code: 130, meaning: "stopped by Ctrl-C (SIGINT) or SIGTERM (143); the message says what is left and how the next run continues" },
} as const;

/** The README's table of exit codes. */
export function exitCodesTable(): string {
  return ["| exit | meaning |", "|---|---|", ...Object.values(EXIT).map((e) => `| ${e.code} | ${e.meaning} |`)].join("\n");
}

/**
 * The base of every error a user can cause or fix. Each part of ooo names its
 * own errors in its own `errors.ts` (builder/errors.ts, store/errors.ts, …) as
 * subclasses of this one; only the CLI turns them into text and exit codes.
 * Anything that is not an OooError reaching the CLI is a bug in ooo.
 */
export abstract class OooError extends Error {
  /** A stable, machine-readable name for scripts and `--json` output. */
  abstract readonly code: string;
  /** The process exit code the CLI uses for this error (EXIT). */
  readonly exitCode: number = EXIT.failed.code;
  /** Optional advice printed under the message. */
  hint?: string;

  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.hint) this.hint = options.hint;
  }
}

/** A command-line usage mistake (bad flag value, missing argument). */
export class UsageError extends OooError {
  readonly code = "usage";
  override readonly exitCode: number = EXIT.usage.code;
}

/** A host requirement is missing: root, a Debian package, qemu, the mirror. */
export class MissingRequirement extends OooError {
  readonly code = "missing-requirement";
  override readonly exitCode = EXIT.missing.code;
  constructor(what: string, howToGetIt: string) {
    super(`${what} is required but missing`, { hint: howToGetIt });
  }
}

/** A problem at a place in an input file: `stack.yaml:12 roles.web.count: must be ≥ 0`. */
export interface Problem {
  file?: string;
  line?: number;
  path?: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  const where = [p.file && (p.line ? `${p.file}:${p.line}` : p.file), p.path].filter(Boolean).join(" ");
  return where ? `${where}: ${p.message}` : p.message;
}

/** One or more problems in an input file, all reported at once. */
export class InvalidInput extends OooError {
  readonly code = "invalid-input";
  override readonly exitCode = EXIT.usage.code;
  constructor(
    what: string,
    readonly problems: Problem[],
  ) {
    super(`${what}:\n${problems.map((p) => `  - ${formatProblem(p)}`).join("\n")}`);
  }
}

export function isOooError(e: unknown): e is OooError {
  return e instanceof OooError;
}

/** A minisign key file ooo cannot use: malformed, another algorithm, a wrong password. Never shows the key. */
export class KeyUnusable extends OooError {
  readonly code = "key-unusable";
  override readonly exitCode = EXIT.usage.code;
  constructor(
    readonly source: string,
    reason: string,
  ) {
    super(`cannot use ${source}: ${reason}`, { hint: "`ooo key generate NAME` makes a key pair (NAME.key, NAME.pub) in minisign's format." });
  }
}

/** A minisign signature that is not one (it says nothing about trust either way). */
export class SignatureMalformed extends OooError {
  readonly code = "signature-malformed";
  constructor(
    readonly source: string,
    reason: string,
  ) {
    super(`${source} is not a minisign signature: ${reason}`);
  }
}

/** An image whose manifest is not signed by a trusted key (or was changed after it was signed). */
export class ImageNotTrusted extends OooError {
  readonly code = "image-not-trusted";
  override readonly exitCode = EXIT.refused.code;
  constructor(
    readonly image: string,
    readonly reason: string,
  ) {
    super(`${image}: ${reason}`, {
      hint: "Publish it signed (ooo publish --sign KEY.key), by a key whose .pub the stack lists under trust.keys; `ooo store verify REF --key KEY.pub` checks an image.",
    });
  }
}

/** A path the user gave cannot be used as asked: names the path, what it was for, and what is wrong. */
export class PathProblem extends OooError {
  readonly code = "bad-path";
  override readonly exitCode = EXIT.usage.code;
  constructor(
    readonly path: string,
    readonly problem: string,
    readonly what?: string,
    hint?: string,
  ) {
    super(`${what ? `${what} ${path}` : path}: ${problem}`, { hint });
  }
}

/** Outputs that exist: replaced only when asked (lib/user-paths.ts). */
export class OutputExists extends OooError {
  readonly code = "output-exists";
  override readonly exitCode = EXIT.usage.code;
  constructor(
    readonly paths: string[],
    forceFlag = "--force",
  ) {
    const list = paths.length === 1 ? paths[0]! : `${paths.slice(0, -1).join(", ")} and ${paths.at(-1)}`;
    super(`${list} ${paths.length === 1 ? "exists" : "exist"}; nothing was written`, {
      hint: forceFlag
        ? `${forceFlag} replaces ${paths.length === 1 ? "it" : "them"} (each only once the new one is complete); or choose another name.`
        : "Remove it first, or choose another name.",
    });
  }
}

/** The kernel's word for a failed call on a path, in the user's. */
const PATH_ERRNO: Record<string, string> = {
  ENOENT: "does not exist",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "it is on a read-only filesystem",
  EISDIR: "is a folder, not a file",
  ENOTDIR: "a part of the path is a file, not a folder",
  EEXIST: "already exists",
  ENOTEMPTY: "is a folder that is not empty",
  ENAMETOOLONG: "the name is too long",
  ELOOP: "too many levels of symbolic links",
  EBUSY: "is busy (mounted, or in use)",
  ETXTBSY: "is a program that is running",
  ENXIO: "no such device",
  ENODEV: "no such device",
};
/** …and those that say the machine ran out of something, whatever the path. */
const RESOURCE_ERRNO: Record<string, string> = {
  ENOSPC: "no space left on its device",
  EDQUOT: "the disk quota is used up",
  EIO: "input/output error: the device failed",
  EMFILE: "too many open files",
  ENFILE: "too many open files on this system",
  ENOMEM: "out of memory",
};
const VERB: Record<string, string> = {
  open: "open",
  read: "read",
  write: "write",
  mkdir: "make the folder",
  rmdir: "remove the folder",
  unlink: "remove",
  rm: "remove",
  rename: "rename",
  link: "link",
  symlink: "make the link",
  scandir: "list the folder",
  opendir: "list the folder",
  copyfile: "copy",
  chmod: "change the mode of",
  chown: "change the owner of",
  stat: "use",
  lstat: "use",
  access: "use",
  realpath: "use",
};

/** A resource the machine ran out of (disk, files), as the failure it is. */
export class ResourceExhausted extends OooError {
  readonly code = "resource-exhausted";
  constructor(message: string, cause: unknown) {
    super(message, { cause });
  }
}

/** What a system error says about its path, in plain words ("does not exist"); undefined for other errors. */
export function systemReason(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? (PATH_ERRNO[code] ?? RESOURCE_ERRNO[code]) : undefined;
}

type SystemError = Error & { code?: string; syscall?: string; path?: string; dest?: string };

function systemErrorIn(e: unknown): SystemError | undefined {
  for (let x = e as SystemError | undefined, depth = 0; x && depth < 5; x = (x as { cause?: unknown }).cause as SystemError | undefined, depth++)
    if (typeof x.code === "string" && (x.code in PATH_ERRNO || x.code in RESOURCE_ERRNO)) return x;
  return undefined;
}

/**
 * What the user sees of an error: an OooError as it is; a system error on a
 * path (ENOENT, EACCES, EROFS, EISDIR, ENOTDIR, EEXIST …) as a PathProblem
 * naming the path — whichever code let it through, it is about a file or
 * folder the user can fix; a full disk as the failure it is. Undefined
 * means a bug in ooo. The one place both CLIs (cli/ooo.ts, agents/main.ts)
 * decide that.
 */
export function asUserError(e: unknown): OooError | undefined {
  if (isOooError(e)) return e;
  const sys = systemErrorIn(e);
  if (!sys) return undefined;
  const path = sys.path ?? sys.dest;
  const verb = VERB[sys.syscall ?? ""] ?? "use";
  if (sys.code! in RESOURCE_ERRNO)
    return new ResourceExhausted(path ? `cannot ${verb} ${path}: ${RESOURCE_ERRNO[sys.code!]}` : RESOURCE_ERRNO[sys.code!]!, e);
  // Bun leaves the path out of some (readFileSync of a folder): still the user's path, unnamed.
  if (!path) return new PathProblem("a path given", `${PATH_ERRNO[sys.code!]!} (${sys.syscall ?? sys.code})`);
  let problem = PATH_ERRNO[sys.code!]!;
  if (sys.code === "ENOENT" && path.includes("/")) {
    const parent = path.slice(0, path.lastIndexOf("/"));
    if (parent && !existsSyncQuiet(parent)) problem = `its folder ${parent} does not exist`;
  }
  return new PathProblem(path, problem, `cannot ${verb}`);
}

function existsSyncQuiet(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
