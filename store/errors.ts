import { OooError } from "../lib/errors.ts";

/**
 * The store's errors. Server-side ones carry the HTTP status Glance answers
 * with in the same situation (reference §1), so the API layer maps them
 * without a table; client-side ones say what the server or the data did.
 */
export abstract class StoreError extends OooError {
  /** HTTP status the API answers with. */
  abstract readonly status: number;
  /** Extra response headers (Accept-Patch, Content-Range …). */
  headers?: Record<string, string>;
}

export class ImageNotFound extends StoreError {
  readonly code = "image-not-found";
  readonly status = 404;
  constructor(readonly ref: string) {
    super(`No image found with ID or name ${ref}`, { hint: "`ooo store list` shows the images the store has." });
  }
}

export class BlobNotFound extends StoreError {
  readonly code = "blob-not-found";
  readonly status = 404;
  constructor(readonly digest: string) {
    super(`no blob ${digest} in the store`);
  }
}

export class NotFound extends StoreError {
  readonly code = "not-found";
  readonly status = 404;
}

/** A malformed request: bad JSON, a bad value, a bad filter or marker. */
export class BadRequest extends StoreError {
  readonly code = "bad-request";
  readonly status = 400;
}

export class Unauthorized extends StoreError {
  readonly code = "unauthorized";
  readonly status = 401;
  override readonly exitCode = 3;
  constructor(message = "This server could not verify that you are authorized to access the resource") {
    super(message, { hint: "Pass the store's token with --token-file or OOO_STORE_TOKEN." });
  }
}

/** A token that may not do this, a read-only property, a protected image. */
export class Forbidden extends StoreError {
  readonly code = "forbidden";
  readonly status = 403;
  override readonly exitCode = 3;
}

/** The image is not in a state that allows this (Glance's 409). */
export class Conflict extends StoreError {
  readonly code = "conflict";
  readonly status = 409;
}

/** The image was deleted while its data was being uploaded. */
export class Gone extends StoreError {
  readonly code = "gone";
  readonly status = 410;
}

export class TooLarge extends StoreError {
  readonly code = "too-large";
  readonly status = 413;
}

export class UnsupportedMediaType extends StoreError {
  readonly code = "unsupported-media-type";
  readonly status = 415;
  constructor(message: string, accept?: Record<string, string>) {
    super(message);
    if (accept) this.headers = accept;
  }
}

export class RangeNotSatisfiable extends StoreError {
  readonly code = "range-not-satisfiable";
  readonly status = 416;
  constructor(
    readonly range: string,
    readonly size: number,
  ) {
    super(`Requested range ${range} not satisfiable for ${size} bytes`);
    this.headers = { "Content-Range": `bytes */${size}` };
  }
}

/** Uploaded data did not match what the record or the request declared. */
export class DigestMismatch extends StoreError {
  readonly code = "digest-mismatch";
  readonly status = 400;
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${what} does not match: expected ${expected}, got ${actual}; nothing was kept`);
  }
}

/** The blob backend failed (disk, Swift); the request may be retried. */
export class BackendFailed extends StoreError {
  readonly code = "backend-failed";
  readonly status = 503;
}

/** A second server on the same store directory. */
export class StoreLocked extends OooError {
  readonly code = "store-locked";
  constructor(readonly dir: string) {
    super(`another ooo store server is using ${dir}`, { hint: "Stop it first; one server owns a store directory." });
  }
}

export class ListenFailed extends OooError {
  readonly code = "listen-failed";
  constructor(
    readonly listen: string,
    cause: unknown,
  ) {
    super(`ooo store serve cannot listen on ${listen}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
      hint: "Another program (another store?) may hold the port: stop it, or choose another address with --listen HOST:PORT.",
    });
  }
}

// --- client side ---

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
    this.exitCode = status === 401 || status === 403 ? 3 : 1;
  }
}

export class StoreUnreachable extends OooError {
  readonly code = "store-unreachable";
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(`cannot reach the image store at ${url}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
      hint: "Is `ooo store serve` running there? Set the address with --store or OOO_STORE_URL.",
    });
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
