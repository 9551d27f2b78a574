import { floatRepr } from "./dumps.ts";
import { isDict, isList, type PyValue } from "./value.ts";

/**
 * Python's `str()` and `repr()` of JSON data. os-apply-config matches
 * `--type` patterns against `str(value)` (`True`, `{'k': 1}`) and puts
 * reprs in its messages, so we need the same text.
 */
export function pyStr(v: PyValue): string {
  return typeof v === "string" ? v : pyRepr(v);
}

export function pyRepr(v: PyValue): string {
  if (v === null) return "None";
  switch (typeof v) {
    case "boolean":
      return v ? "True" : "False";
    case "bigint":
      return v.toString();
    case "number":
      return floatRepr(v);
    case "string":
      return reprString(v);
  }
  if (isList(v)) return `[${v.map(pyRepr).join(", ")}]`;
  if (isDict(v)) return `{${[...v].map(([k, x]) => `${reprString(k)}: ${pyRepr(x)}`).join(", ")}}`;
  return String(v);
}

/** Characters Python's str.isprintable() rejects (besides the ASCII space, which is printable). */
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

function quoteFor(s: string): string {
  return s.includes("'") && !s.includes('"') ? '"' : "'";
}

export function reprString(s: string): string {
  const q = quoteFor(s);
  let out = q;
  for (const c of s) {
    if (c === q || c === "\\") out += "\\" + c;
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if (c !== " " && NOT_PRINTABLE.test(c)) {
      const cp = c.codePointAt(0)!;
      out += cp < 0x100 ? `\\x${hex(cp, 2)}` : cp < 0x10000 ? `\\u${hex(cp, 4)}` : `\\U${hex(cp, 8)}`;
    } else out += c;
  }
  return out + q;
}

/** Python's repr of a bytes object: `b'...'`. */
export function reprBytes(b: Uint8Array): string {
  const s = Buffer.from(b).toString("latin1");
  const q = quoteFor(s);
  let out = "b" + q;
  for (const c of s) {
    const code = c.charCodeAt(0);
    if (c === q || c === "\\") out += "\\" + c;
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if (code < 0x20 || code >= 0x7f) out += `\\x${hex(code, 2)}`;
    else out += c;
  }
  return out + q;
}

/** A Python tuple of strings, as exceptions print their args: `('msg', 'path')`. */
export function reprTuple(items: string[]): string {
  return items.length === 1 ? `(${reprString(items[0]!)},)` : `(${items.map(reprString).join(", ")})`;
}

function hex(n: number, width: number) {
  return n.toString(16).padStart(width, "0");
}
