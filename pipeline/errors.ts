import { EXIT, OooError } from "../lib/errors.ts";

/** A build `ooo test-image` cannot boot: no manifest, no disk image, no kernel beside it. */
export class UntestableBuild extends OooError {
  readonly code = "untestable-build";
  override readonly exitCode = EXIT.usage.code;
  constructor(readonly image: string, detail: string) {
    super(`cannot test ${image}: ${detail}`, { hint: "Pass the build's -o path, its .manifest.json, or its .raw/.qcow2 file." });
  }
}

export class BootFailed extends OooError {
  readonly code = "boot-failed";
  constructor(readonly mode: string, detail: string, readonly consoleLog: string) {
    super(`${mode} boot failed: ${detail}\nconsole log: ${consoleLog}`);
  }
}

export class ImageChecksFailed extends OooError {
  readonly code = "image-checks-failed";
  constructor(readonly mode: string, readonly failures: string[], readonly consoleLog: string) {
    super(`${mode} boot: ${failures.length} check(s) failed:\n${failures.map((f) => `  - ${f}`).join("\n")}\nconsole log: ${consoleLog}`);
  }
}

/** A publish that went wrong once it had started. */
export class PublishFailed extends OooError {
  readonly code = "publish-failed";
}

/** A build that cannot be published as it is (its manifest, a missing or changed artifact): found before anything is sent. */
export class UnpublishableBuild extends OooError {
  readonly code = "unpublishable-build";
  override readonly exitCode = EXIT.usage.code;
}
