import { EXIT, OooError } from "../../lib/errors.ts";

/**
 * The store client's errors: what the server answered, what the data did,
 * and image references that name no usable image. The server's errors
 * (store/errors.ts) reach a client as an HTTP status: StoreRequestFailed.
 */

/** The store answered with an error status. */
export class StoreRequestFailed extends OooError {
  readonly code = "store-request-failed";
  override readonly exitCode: number;
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly detail: string,
  ) {
    super(`${method} ${url}: ${status} ${detail}`);
    this.exitCode = status === 401 || status === 403 ? EXIT.refused.code : EXIT.failed.code;
  }
}

export class StoreUnreachable extends OooError {
  readonly code = "store-unreachable";
  constructor(
    readonly url: string,
    cause: unknown,
    /** Where the URL came from ("--store or OOO_STORE_URL", "store.url in stack.yaml"): the hint says where to fix it. */
    source?: string,
  ) {
    const message = cause instanceof Error ? cause.message : String(cause);
    const tls = /certificate|CERT_|self.signed|altname|TLS|SSL/i.test(message);
    super(`cannot reach the image store at ${url}: ${message}`, {
      cause,
      hint: tls
        ? "Its certificate is not trusted here: give the CA that signed it with --ca-file or OOO_STORE_CA (a stack's own CA: .ooo/STACK/tls/ca.pem)."
        : `Is \`ooo store serve\` running there?${source ? ` The address comes from ${source}.` : ""}`,
    });
  }
}

/** The CA file named to trust for the store cannot be read. */
export class StoreCaUnreadable extends OooError {
  readonly code = "store-ca-unreadable";
  override readonly exitCode = EXIT.usage.code;
  constructor(
    readonly file: string,
    readonly from: string,
  ) {
    super(`cannot read the store's CA certificate ${file} (from ${from})`);
  }
}

/** The image has no data to give: not uploaded yet, or withdrawn (deactivated). */
export class ImageUnavailable extends OooError {
  readonly code = "image-unavailable";
  constructor(
    readonly image: string,
    readonly status: string,
  ) {
    const withdrawn = status === "deactivated";
    super(withdrawn ? `image ${image} is deactivated: an operator withdrew its data` : `image ${image} is ${status}: it has no data yet`, {
      hint: withdrawn ? "glance image-reactivate ID gives it back; or use another version." : "Publish it first, or use an active version.",
    });
  }
}

/** Downloaded or reassembled data does not match its digest. */
export class CorruptDownload extends OooError {
  readonly code = "corrupt-download";
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`Corrupt image download: ${what} has ${actual}, expected ${expected}; nothing was written`);
  }
}

/** Text that is not an image reference (wire/image-ref.ts). */
export class BadImageRef extends OooError {
  readonly code = "bad-image-ref";
  override readonly exitCode = EXIT.usage.code;
  constructor(
    readonly ref: string,
    problem: string,
  ) {
    super(`image reference ${JSON.stringify(ref)}: ${problem}`);
  }
}

/** A reference that names no image in the store; `known` says what there is instead. */
export class UnknownImage extends OooError {
  readonly code = "unknown-image";
  constructor(
    readonly ref: string,
    readonly known: string,
  ) {
    super(`no image in the store matches ${ref}: ${known}`, { hint: "`ooo store list` shows the images the store has." });
  }
}

/** Data that nothing trusted says what it should be: not downloaded, since no check could tell it from other data. */
export class NothingToVerify extends OooError {
  readonly code = "nothing-to-verify";
  constructor(
    readonly image: string,
    reason: string,
  ) {
    super(`refusing to download image ${image}: ${reason}; nothing would tell its data from other data`, {
      hint: "name it by digest (NAME@sha256:HEX or sha256:HEX), or have the store record a sha256 or sha512 of it (os_hash_algo/os_hash_value)",
    });
  }
}
