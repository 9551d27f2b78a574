import { z } from "zod";
import { DIGEST_FORMAT, DIGEST_PREFIX, DIGEST_RE, SHA256_HEX_RE } from "./digest.ts";

/**
 * How a person, a stack file or a node names an image in the store: the one
 * grammar of `ooo store fetch|show`, `ooo promote`, `ooo takeover --image`,
 * a role's `image:` and the store client's resolver. Defined once, here.
 *
 *   ID                an image id (a UUID)
 *   sha256:HEX        its content address, whatever its name
 *   NAME              the newest active image of that name
 *   NAME:TAG          … carrying that tag (a Glance tag, moved by `ooo promote`)
 *   NAME@TAG          … carrying that tag, else NAME@VERSION: how stack files
 *   NAME@VERSION        have always named images (kv@live, kv@3)
 *   NAME@sha256:HEX   … with that digest
 *
 * When several images match (a tag being moved), the newest wins. Names,
 * tags and versions are letters, digits, '.', '_' and '-' (tags and versions
 * also '+'), starting with a letter or digit: what fits between the
 * separators without quoting. An image named otherwise is reached by its id.
 */

/** A sha256 in lowercase hex. */
export const Sha256Hex = z.string().regex(SHA256_HEX_RE, "a sha256 in lowercase hex");
/** `sha256:<hex>`: a content address. */
export const Digest = z.string().regex(DIGEST_RE, `a digest is ${DIGEST_FORMAT}`);

export const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The forms, as help texts, the stack file's documentation and errors list them. */
export const IMAGE_REF_FORMS = "NAME@TAG (else NAME@VERSION), NAME:TAG, NAME@sha256:HEX, sha256:HEX, NAME (the newest) or an image ID";

const NAME = "[A-Za-z0-9][A-Za-z0-9._-]*";
const LABEL = "[A-Za-z0-9][A-Za-z0-9._+-]*";
const HEX = "[0-9a-f]{64}";
/**
 * The whole grammar as one pattern (an id is a NAME to it), for the stack
 * file's JSON Schema. `sha256:` starts a digest, never NAME:TAG, so that a
 * mistyped digest is refused rather than looked up as the tag of an image
 * named sha256.
 */
const IMAGE_REF_RE = new RegExp(`^(?:sha256:${HEX}|(?!sha256:)${NAME}(?:@sha256:${HEX}|[@:]${LABEL})?)$`);
const FORM_RE = new RegExp(`^(${NAME})(?:(@|:)(sha256:.*|${LABEL}))?$`);

export type ImageRef = { text: string } & (
  | { form: "id"; id: string }
  | { form: "digest"; digest: string }
  | { form: "name"; name: string }
  | { form: "tag"; name: string; tag: string }
  | { form: "tag-or-version"; name: string; label: string }
  | { form: "name-digest"; name: string; digest: string }
);

/** Why `text` is no image reference; undefined when it is one. */
function problemOf(text: string): string | undefined {
  if (IMAGE_REF_RE.test(text)) return undefined;
  const digest = text.startsWith(DIGEST_PREFIX) ? text : text.slice(text.indexOf("@") + 1);
  if (digest.startsWith(DIGEST_PREFIX)) return `must be ${IMAGE_REF_FORMS}; a digest is ${DIGEST_FORMAT}`;
  return `must be ${IMAGE_REF_FORMS}`;
}

/** The reference as a typed value, or why the text is not one. */
export function parseImageRef(text: string): { ref: ImageRef; problem?: undefined } | { ref?: undefined; problem: string } {
  const problem = problemOf(text);
  if (problem) return { problem };
  if (UUID_RE.test(text)) return { ref: { text, form: "id", id: text } };
  if (DIGEST_RE.test(text)) return { ref: { text, form: "digest", digest: text } };
  const [, name, separator, rest] = FORM_RE.exec(text)!;
  if (!separator) return { ref: { text, form: "name", name: name! } };
  if (separator === ":") return { ref: { text, form: "tag", name: name!, tag: rest! } };
  if (rest!.startsWith(DIGEST_PREFIX)) return { ref: { text, form: "name-digest", name: name!, digest: rest! } };
  return { ref: { text, form: "tag-or-version", name: name!, label: rest! } };
}

/** A reference in a document (a stack file's `image:`): text, checked against the grammar. */
export const ImageRefText = z
  .string({ error: (issue) => (issue.input === undefined ? `is required: an image in the store, ${IMAGE_REF_FORMS}` : `must be ${IMAGE_REF_FORMS}`) })
  .regex(IMAGE_REF_RE, { error: (issue) => problemOf(String(issue.input)) })
  .describe(
    "An image in the store: NAME@TAG (a tag, e.g. node@stable; when NAME has no such tag, the version), NAME:TAG (a tag only), NAME@sha256:HEX or sha256:HEX (a digest), NAME (its newest active image) or an image ID",
  );

/** A tag or version as references can name it (LABEL above); `promote --tag` and `publish --tag/--image-version` are checked against it before anything is sent. */
export const LABEL_RE = new RegExp(`^${LABEL}$`);
export const LABEL_FORM = "letters, digits, '.', '_', '+' and '-', starting with a letter or digit";
