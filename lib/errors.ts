/**
 * The base of every error a user can cause or fix. Each part of ooo names its
 * own errors in its own `errors.ts` (builder/errors.ts, store/errors.ts, …) as
 * subclasses of this one; only the CLI turns them into text and exit codes.
 * Anything that is not an OooError reaching the CLI is a bug in ooo.
 */
export abstract class OooError extends Error {
  /** A stable, machine-readable name for scripts and `--json` output. */
  abstract readonly code: string;
  /** The process exit code the CLI uses for this error. */
  readonly exitCode: number = 1;
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
  override readonly exitCode = 2;
}

/** A host requirement is missing: root, a Debian package, qemu, the mirror. */
export class MissingRequirement extends OooError {
  readonly code = "missing-requirement";
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
  override readonly exitCode = 3;
  constructor(
    readonly image: string,
    readonly reason: string,
  ) {
    super(`${image}: ${reason}`, {
      hint: "Publish it signed (ooo publish --sign KEY.key), by a key whose .pub the stack lists under trust.keys; `ooo store verify REF --key KEY.pub` checks an image.",
    });
  }
}
