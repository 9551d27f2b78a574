import type { PyDict, PyValue } from "./value.ts";

/** Raised for text Python's json.loads would reject; `offset` is where it gave up. */
export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} (char ${offset})`);
  }
}

/** Python refuses int literals longer than this (sys.int_info.default_max_str_digits, 3.11+). */
const MAX_INT_DIGITS = 4300;

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;
const WHITESPACE = /[ \t\n\r]*/y;

/**
 * Parse JSON text exactly as Python's `json.loads` does: ints stay exact
 * (bigint), numbers with a fraction or exponent are floats, `NaN`,
 * `Infinity` and `-Infinity` are accepted, raw control characters in
 * strings are refused, a repeated key keeps its first position and its last
 * value, and a byte-order mark is an error.
 */
export function parseJson(text: string): PyValue {
  let i = 0;
  const fail = (message: string): never => {
    throw new JsonSyntaxError(message, i);
  };
  const skip = () => {
    WHITESPACE.lastIndex = i;
    WHITESPACE.exec(text);
    i = WHITESPACE.lastIndex;
  };

  const value = (): PyValue => {
    skip();
    const c = text[i];
    if (c === "{") return object();
    if (c === "[") return array();
    if (c === '"') return string();
    if (text.startsWith("null", i)) return (i += 4), null;
    if (text.startsWith("true", i)) return (i += 4), true;
    if (text.startsWith("false", i)) return (i += 5), false;
    if (text.startsWith("NaN", i)) return (i += 3), NaN;
    if (text.startsWith("Infinity", i)) return (i += 8), Infinity;
    if (text.startsWith("-Infinity", i)) return (i += 9), -Infinity;
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return fail("Expecting value");
    i = NUMBER.lastIndex;
    if (m[1] === undefined && m[2] === undefined) {
      const digits = m[0].replace("-", "");
      if (digits.length > MAX_INT_DIGITS) fail("Exceeds the limit for integer string conversion");
      return BigInt(m[0]);
    }
    return Number(m[0]);
  };

  const object = (): PyDict => {
    i++;
    const out: PyDict = new Map();
    skip();
    if (text[i] === "}") return i++, out;
    for (;;) {
      skip();
      if (text[i] !== '"') fail("Expecting property name enclosed in double quotes");
      const key = string();
      skip();
      if (text[i] !== ":") fail("Expecting ':' delimiter");
      i++;
      out.set(key, value());
      skip();
      if (text[i] === "}") return i++, out;
      if (text[i] !== ",") fail("Expecting ',' delimiter");
      i++;
    }
  };

  const array = (): PyValue[] => {
    i++;
    const out: PyValue[] = [];
    skip();
    if (text[i] === "]") return i++, out;
    for (;;) {
      out.push(value());
      skip();
      if (text[i] === "]") return i++, out;
      if (text[i] !== ",") fail("Expecting ',' delimiter");
      i++;
    }
  };

  const string = (): string => {
    i++;
    let out = "";
    for (;;) {
      const start = i;
      while (i < text.length) {
        const code = text.charCodeAt(i);
        if (code === 0x22 || code === 0x5c || code < 0x20) break;
        i++;
      }
      out += text.slice(start, i);
      if (i >= text.length) fail("Unterminated string starting at");
      const c = text[i]!;
      if (c === '"') return i++, out;
      if (c !== "\\") fail("Invalid control character at");
      i++;
      const e = text[i];
      const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e !== undefined && e in simple) {
        out += simple[e];
        i++;
      } else if (e === "u") {
        const hex = text.slice(i + 1, i + 5);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("Invalid \\uXXXX escape");
        // Python joins a \uD8xx\uDCxx pair; a lone surrogate stays as it is, as in a JS string.
        out += String.fromCharCode(parseInt(hex, 16));
        i += 5;
      } else fail("Invalid \\escape");
    }
  };

  const result = value();
  skip();
  if (i !== text.length) fail("Extra data");
  return result;
}
