/**
 * Content addresses, as every part writes them: a sha256 in lowercase hex,
 * and a digest, `sha256:` and that hex — an image's (the sha256 of its
 * canonical root tar), a blob's, a chunk's. Defined once, here.
 *
 * No zod in this module: the takeover's first check on a node
 * (agents/takeover/check.ts) runs at every configuration and must not pay
 * for evaluating zod under emulation. The zod schemas built on these
 * patterns are in wire/image-ref.ts.
 */
export const SHA256_HEX_RE = /^[0-9a-f]{64}$/;
export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
export const DIGEST_PREFIX = "sha256:";

/** What a digest looks like, for error messages. */
export const DIGEST_FORMAT = "sha256: and 64 lowercase hex digits";

export const isDigest = (value: unknown): value is string => typeof value === "string" && DIGEST_RE.test(value);
