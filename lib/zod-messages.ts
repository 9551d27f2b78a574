import { z } from "zod";

/**
 * zod's default messages speak the code's language ("Invalid input:
 * expected number, received NaN", "Too small: expected number to be >=0",
 * "expected object, received null"). This map, set once for the whole
 * process, says the same in the user's: every schema's problems read as
 * "must be a number", "must be at least 0", "is empty". A schema's own
 * message (`.min(1, "must be ≥ 1")`) still wins. Imported by lib/validate.ts
 * and both command lines, so it is in place before anything parses.
 */

const EXPECTED: Record<string, string> = {
  string: "text",
  number: "a number",
  int: "a whole number",
  bigint: "a whole number",
  boolean: "true or false",
  object: "a mapping (key: value)",
  record: "a mapping (key: value)",
  map: "a mapping (key: value)",
  array: "a list",
  tuple: "a list",
  set: "a list",
  date: "a date",
  literal: "a fixed value",
  null: "empty",
};

/** How a value the user gave reads in a message (never the value itself: it may be a secret). */
export function describeValue(input: unknown): string {
  if (input === null) return "empty";
  if (Array.isArray(input)) return input.length ? "a list" : "an empty list";
  if (typeof input === "number") return Number.isNaN(input) ? "not a number" : "a number";
  if (typeof input === "string") return input === "" ? "empty text" : "text";
  if (typeof input === "boolean") return "true or false";
  if (typeof input === "object") return "a mapping";
  return typeof input;
}

const count = (n: number | bigint, one: string, many = `${one}s`) => `${n} ${n === 1 || n === 1n ? one : many}`;

function tooSmall(origin: string, minimum: number | bigint, inclusive: boolean | undefined): string {
  if (origin === "string") return minimum === 1 ? "must not be empty" : `must be at least ${count(minimum, "character")}`;
  if (origin === "array" || origin === "set") return minimum === 1 ? "must not be empty" : `must have at least ${count(minimum, "entry", "entries")}`;
  return inclusive === false ? `must be more than ${minimum}` : `must be at least ${minimum}`;
}

function tooBig(origin: string, maximum: number | bigint, inclusive: boolean | undefined): string {
  if (origin === "string") return `must be at most ${count(maximum, "character")}`;
  if (origin === "array" || origin === "set") return `must have at most ${count(maximum, "entry", "entries")}`;
  return inclusive === false ? `must be less than ${maximum}` : `must be at most ${maximum}`;
}

const FORMATS: Record<string, string> = {
  url: "must be a URL such as https://host:9292",
  uuid: "must be a UUID",
  email: "must be an e-mail address",
  ipv4: "must be an IPv4 address",
  ipv6: "must be an IPv6 address",
  datetime: "must be a date and time (ISO 8601)",
};

/** One zod issue as a plain sentence; undefined keeps zod's (for codes this does not know). */
export function plainMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      if (issue.input === undefined) return "is required";
      if (typeof issue.input === "number" && Number.isNaN(issue.input)) return "must be a number"; // yargs' reading of "abc" for a number
      return `must be ${EXPECTED[issue.expected] ?? issue.expected}, not ${describeValue(issue.input)}`;
    case "too_small":
      return tooSmall(issue.origin, issue.minimum, issue.inclusive);
    case "too_big":
      return tooBig(issue.origin, issue.maximum, issue.inclusive);
    case "invalid_format":
      return FORMATS[issue.format] ?? (issue.format === "regex" ? "is not in the expected form" : `must be ${issue.format}`);
    case "invalid_value":
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}`
        : `must be one of: ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "unrecognized_keys":
      return `unknown ${issue.keys.length === 1 ? "key" : "keys"} ${issue.keys.join(", ")}`;
    case "invalid_union":
      return "is none of the forms it may take";
    case "not_multiple_of":
      return `must be a multiple of ${issue.divisor}`;
    case "invalid_key":
      return "has a key that is not allowed";
    case "invalid_element":
      return "has an entry that is not allowed";
    default:
      return undefined;
  }
}

z.config({ customError: plainMessage });
