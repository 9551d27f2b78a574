import { EXIT, OooError } from "../lib/errors.ts";

// DIB's element_dependencies.py names: InvalidElementDir, MissingElementException,
// AlreadyProvidedException, MissingOSException. Messages match DIB's where
// users grep for them. Mistakes in the choice of elements or in their files
// are found before any hook runs: EXIT.usage, nothing was built.

export class InvalidElementDir extends OooError {
  readonly code = "invalid-element-dir";
  override readonly exitCode = EXIT.usage.code;
  constructor(readonly entry: string) {
    super(`ELEMENTS_PATH entry '${entry}' is not a directory`);
  }
}

export class MissingElement extends OooError {
  readonly code = "missing-element";
  override readonly exitCode = EXIT.usage.code;
  constructor(
    readonly element: string,
    readonly requiredBy: string[],
  ) {
    super(
      `Element '${element}' not found` +
        (requiredBy.length ? ` (required by ${requiredBy.join(", ")})` : " (requested on the command line)"),
      { hint: "Check the name and ELEMENTS_PATH (--elements-path); `ooo element-info --list` shows what is found." },
    );
  }
}

export class AlreadyProvided extends OooError {
  readonly code = "already-provided";
  override readonly exitCode = EXIT.usage.code;
  constructor(
    readonly provided: string,
    readonly providers: string[],
    readonly requested = false,
  ) {
    super(
      requested
        ? `${provided} : already provided by [${providers.map((p) => `'${p}'`).join(", ")}]; ` +
            `it was requested and is also provided by another element`
        : `${provided}: already provided by [${providers.map((p) => `'${p}'`).join(", ")}]`,
    );
  }
}

export class MissingOS extends OooError {
  readonly code = "missing-os";
  override readonly exitCode = EXIT.usage.code;
  constructor() {
    super("Please include an operating system element", {
      hint: "Add a base OS element such as debian-minimal or busybox-base.",
    });
  }
}

export class DuplicateHook extends OooError {
  readonly code = "duplicate-hook";
  override readonly exitCode = EXIT.usage.code;
  constructor(
    readonly dir: string,
    readonly hook: string,
    readonly elements: [string, string],
  ) {
    super(
      `There is a duplicated hook in your elements: ${dir}/${hook} is in both ` +
        `${elements[0]} and ${elements[1]}`,
    );
  }
}

export class HookFailed extends OooError {
  readonly code = "hook-failed";
  constructor(
    readonly element: string,
    readonly phase: string,
    readonly hook: string,
    readonly status: number | string,
    readonly tail: string[],
  ) {
    super(
      `hook ${phase}/${hook} of element ${element} failed (${typeof status === "number" ? `exit ${status}` : status})` +
        (tail.length ? `; last output:\n${tail.map((l) => `    ${l}`).join("\n")}` : ""),
    );
  }
}

/**
 * DIB runs whatever a phase folder holds when the phase starts; ooo lists and
 * keys every hook before the build, so an extra-data.d hook may not add or
 * remove hooks (install-types' *-TYPE-install folders are handled up front).
 */
export class HooksChanged extends OooError {
  readonly code = "hooks-changed";
  constructor(
    readonly element: string,
    readonly hook: string,
    readonly changes: string[],
  ) {
    super(
      `hook ${hook} of element ${element} changed the hooks to run (${changes.join(", ")}); ` +
        "ooo lists every hook before the build starts, so extra-data.d may not add or remove hooks",
      { hint: "Ship the hooks in the element itself (install.d/<name>-<type>-install folders are supported)." },
    );
  }
}

export class InvalidElement extends OooError {
  readonly code = "invalid-element";
  override readonly exitCode = EXIT.usage.code;
  constructor(
    readonly element: string,
    readonly file: string,
    detail: string,
  ) {
    super(`element ${element}: ${file}: ${detail}`);
  }
}

/** DIB: "Failed to deploy the root element." — root.d ran and left nothing: a failed build, found once its hooks ran. */
export class EmptyRoot extends OooError {
  readonly code = "empty-root";
  constructor() {
    super("element (root.d): root.d: Failed to deploy the root element: the root is empty after root.d", {
      hint: "Include an operating system element whose root.d creates it (debian-minimal, busybox-base).",
    });
  }
}

export class ImageTooSmall extends OooError {
  readonly code = "image-too-small";
  constructor(
    readonly needed: number,
    readonly given: number,
    readonly what = "disk",
  ) {
    const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
    super(
      what === "disk"
        ? `--image-size ${gib(given)} is too small: this root needs a disk of at least ${gib(needed)}`
        : `the ${what} filesystem (${gib(given)}) is too small for its content (needs about ${gib(needed)})`,
      { hint: "Give a larger --image-size, or leave it out to size the disk from the content." },
    );
  }
}

export class UnknownOutputType extends OooError {
  readonly code = "unknown-output-type";
  override readonly exitCode = EXIT.usage.code;
  constructor(readonly type: string, readonly known: string[]) {
    super(`unknown output type '${type}' in -t; known types: ${known.join(", ")}`);
  }
}

/** `-t ramdisk`: something the elements ask the ramdisk to carry is not in the root (a binary, a library, the kernel, /init). */
export class RamdiskIncomplete extends OooError {
  readonly code = "ramdisk-incomplete";
  constructor(
    readonly what: string,
    detail: string,
  ) {
    super(`the ramdisk cannot be made: ${what} ${detail}`);
  }
}

export class BuildInterrupted extends OooError {
  readonly code = "interrupted";
  override readonly exitCode = EXIT.interrupted.code;
  constructor(signal: string) {
    super(`build interrupted by ${signal}; nothing was written`);
  }
}

export class NotRoot extends OooError {
  readonly code = "not-root";
  override readonly exitCode = EXIT.missing.code;
  constructor() {
    super("ooo build-image must run as root (it chroots and mounts inside a private namespace)", {
      hint: "Run it with sudo, or as root in CI.",
    });
  }
}

/** A file name the filesystem tools cannot be told about (a `"` with spaces, a newline). */
export class UnsupportedFileName extends OooError {
  readonly code = "unsupported-file-name";
  constructor(readonly path: string) {
    super(`cannot put ${JSON.stringify(path)} into a filesystem image reproducibly: names with both quotes and spaces, or newlines, are not supported`);
  }
}
