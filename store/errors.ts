import { EXIT, OooError } from "../lib/errors.ts";

/**
 * The store server's errors. Those a request can cause carry the HTTP
 * status Glance answers with in the same situation, so the API layer maps
 * them without a table. The client's errors are in store/client/errors.ts.
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
  override readonly exitCode = EXIT.refused.code;
  constructor(message = "This server could not verify that you are authorized to access the resource") {
    super(message, { hint: "Pass the store's token with --token-file or OOO_STORE_TOKEN." });
  }
}

/** A signed URL that is not (or no longer) valid: Swift's TempURL answers 401 too. */
export class TempUrlRefused extends StoreError {
  readonly code = "temp-url-refused";
  readonly status = 401;
  override readonly exitCode = EXIT.refused.code;
}

/** A token that may not do this, a read-only property, a protected image. */
export class Forbidden extends StoreError {
  readonly code = "forbidden";
  readonly status = 403;
  override readonly exitCode = EXIT.refused.code;
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

/** Too much at once (large bodies being read); the client should retry after `Retry-After` seconds. */
export class TooManyRequests extends StoreError {
  readonly code = "too-many-requests";
  readonly status = 429;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.headers = { "Retry-After": String(retryAfterSeconds) };
  }
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

/**
 * The store's disk has no room (ENOSPC, EDQUOT). Glance answers 413 "Image
 * storage media is full" for its StorageFull; so do we. Whatever was being
 * written is dropped whole.
 */
export class StorageFull extends StoreError {
  readonly code = "storage-full";
  readonly status = 413;
  constructor(cause: unknown) {
    super("Image storage media is full: the store's disk has no room left for this upload; nothing of it was kept", {
      cause,
      hint: "Free space on the store's disk (`ooo store gc` removes blobs no image refers to), then send it again.",
    });
  }
}

/** A disk-full error from the kernel, however a layer wrapped it. */
export function isDiskFull(e: unknown): boolean {
  for (let x = e as { code?: unknown; cause?: unknown } | undefined, depth = 0; x && depth < 5; x = x.cause as typeof x, depth++)
    if (x.code === "ENOSPC" || x.code === "EDQUOT") return true;
  return false;
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
    const code = (cause as { code?: string }).code;
    super(`ooo store serve cannot listen on ${listen}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
      hint:
        code === "EADDRINUSE"
          ? "Another program (another store?) holds the port: stop it, or choose another port with --listen HOST:PORT."
          : code === "EADDRNOTAVAIL"
            ? "This machine has no such address: choose one of its own (127.0.0.1, or an address `ip addr` shows) with --listen HOST:PORT."
            : code === "EACCES"
              ? "Ports below 1024 need root: choose a higher port with --listen HOST:PORT."
              : "Choose another address with --listen HOST:PORT.",
    });
  }
}

/** A folder given as a store that is none: a typo must not become a new, empty store. */
export class NotAStore extends OooError {
  readonly code = "not-a-store";
  override readonly exitCode = EXIT.usage.code;
  constructor(readonly dir: string) {
    super(`${dir} is not an ooo image store (it has no images/ folder); nothing was done`, {
      hint: "Give the --dir (or the config's dir:) of a store `ooo store serve` made.",
    });
  }
}
