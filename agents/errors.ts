import { OooError, systemReason } from "../lib/errors.ts";
import type { RamdiskPhase } from "../wire/deploy.ts";

/**
 * The node agents' errors. Exit codes follow the originals where scripts
 * depend on them: os-apply-config exits 1 on any error; os-refresh-config
 * exits 1 for a failed phase and the lock's errno (11) when another run holds
 * the lock; os-collect-config exits 1 on bad arguments.
 */

// ---- os-apply-config ------------------------------------------------------

/** A template could not be rendered or its control file is wrong (python: ConfigException). */
export class TemplateError extends OooError {
  readonly code = "template-error";
  constructor(
    readonly template: string,
    readonly reason: string,
  ) {
    super(`${template}: ${reason}`);
  }
}

/** A metadata file could not be read or is not JSON. */
export class MetadataError extends OooError {
  readonly code = "metadata-error";
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${reason}: ${file}`);
  }
}

/** `--subhash` names something that is not a hash. */
export class SubhashError extends OooError {
  readonly code = "subhash-error";
  constructor(readonly keys: string) {
    super(`key '${keys}' does not correspond to a hash in the metadata file`);
  }
}

/** `--key` found nothing and no `--key-default` was given. */
export class KeyNotFound extends OooError {
  readonly code = "key-not-found";
  constructor(
    readonly key: string,
    readonly files: string[],
  ) {
    super(`key ${key} does not exist in [${files.map((f) => `'${f}'`).join(", ")}]`);
  }
}

/** `--key`'s value does not match `--type`. */
export class TypeMismatch extends OooError {
  readonly code = "type-mismatch";
  constructor(value: string, type: string) {
    super(`cannot interpret value '${value}' as type ${type}`);
  }
}

export class UnknownValueType extends OooError {
  readonly code = "unknown-value-type";
  constructor(type: string, known: string[]) {
    super(`requested validation of unknown type: ${type}`, { hint: `known types: ${known.join(", ")}` });
  }
}

/** A rendered file would land outside the output root (a symlink in the tree points out of it). */
export class OutsideRoot extends OooError {
  readonly code = "outside-root";
  constructor(
    readonly path: string,
    readonly resolved: string,
    readonly root: string,
  ) {
    super(`refusing to write ${path}: it resolves to ${resolved}, outside the output root ${root}`, {
      hint: "a directory or file on the way is a symlink that leaves the root; remove it or render into the root it points to",
    });
  }
}

/** Writing a rendered file failed (permissions, full disk, a directory in the way). */
export class WriteFailed extends OooError {
  readonly code = "write-failed";
  constructor(
    readonly path: string,
    cause: unknown,
  ) {
    super(`could not write ${path}: ${systemReason(cause) ?? (cause instanceof Error ? cause.message : String(cause))}`, { cause });
  }
}

// ---- os-collect-config ----------------------------------------------------

export class UnknownCollectors extends OooError {
  readonly code = "unknown-collectors";
  constructor(unknown: string[], valid: string[]) {
    super(`Unknown collectors ${unknown.map((c) => `'${c}'`).join(", ")}. Valid collectors are: ${valid.join(", ")}`);
  }
}

export class InvalidConfigFile extends OooError {
  readonly code = "invalid-config-file";
  constructor(file: string, line: number, reason: string) {
    super(`${file}:${line}: ${reason}`);
  }
}

/**
 * A collector has nothing to give this time (source down, bad data): the
 * poll goes on with the others. Not configured is the quiet variant.
 */
export class SourceNotAvailable extends Error {
  constructor(
    readonly collector: string,
    readonly reason: string,
  ) {
    super(`Source [${collector}] Unavailable: ${reason}`);
  }
}

export class SourceNotConfigured extends Error {
  constructor(
    readonly collector: string,
    readonly reason: string,
  ) {
    super(`Source [${collector}] Not configured: ${reason}`);
  }
}

// ---- os-refresh-config ----------------------------------------------------

/** Another os-refresh-config holds the lock; exit code 11 (EAGAIN) like the original. */
export class LockHeld extends OooError {
  readonly code = "lock-held";
  override readonly exitCode = 11;
  constructor(readonly lockfile: string) {
    super(`Could not lock ${lockfile}. [Errno 11] Resource temporarily unavailable`, {
      hint: "another os-refresh-config is running; it runs again on the next change",
    });
  }
}

/** Configuration ran but the completion signal did not reach the metadata service. */
export class SignalFailed extends OooError {
  readonly code = "signal-failed";
  constructor(url: string, reason: string) {
    super(`could not send the completion signal to ${url}: ${reason}`, {
      hint: "os-collect-config runs os-refresh-config again on its next poll, which signals again",
    });
  }
}

// ---- takeover -------------------------------------------------------------

/** An in-place upgrade stopped before the switch; the node keeps its current root. */
export class TakeoverFailed extends OooError {
  readonly code = "takeover-failed";
}

/**
 * What the store gave for an upgrade cannot be installed safely: it is not
 * the image the node's metadata names, or it would write outside the slot.
 * The takeover stops at once; another way of writing would fetch the same.
 */
export class UntrustedImage extends OooError {
  readonly code: string = "untrusted-image";
}

/** An entry of the new root that would land outside the slot, or whose header is not what the image's index lists. */
export class UnsafePath extends UntrustedImage {
  override readonly code = "unsafe-path";
}

/** The root assembled from the store's data is another image than the one the metadata names. */
export class NotTheNamedImage extends UntrustedImage {
  override readonly code = "not-the-named-image";
  constructor(
    readonly what: string,
    readonly named: string,
    readonly actual: string,
  ) {
    super(`${what} is ${actual}, not ${named}, the image this node's metadata names: the store's data for it is not that image`, {
      hint: "the node installs only the digest its metadata names; check what the store serves for it",
    });
  }
}

// ---- deploy (the deploy ramdisk) -----------------------------------------

/** The kernel command line lacks what the ramdisk needs (ooo.md=URL), or says it wrongly. */
export class BadRamdiskCmdline extends OooError {
  readonly code = "bad-ramdisk-cmdline";
  override readonly exitCode = 2;
}

/**
 * A step of a ramdisk command failed. `step` names it (the phases of
 * wire/deploy.ts), so that the deployer's timeline and the result say where.
 */
export class DeployStepFailed extends OooError {
  readonly code = "deploy-step-failed";
  constructor(
    readonly step: RamdiskPhase,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The bytes streamed are not the image the deployer named: the disk is left unbootable. */
export class ImageMismatch extends OooError {
  readonly code = "image-mismatch";
}

/** The store did not answer a Range request with the bytes asked for (206 and their Content-Range): a deploy by disk map needs it. */
export class RangeNotServed extends OooError {
  readonly code = "range-not-served";
}
