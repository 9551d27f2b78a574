import { isDict, isList, type PyValue } from "./value.ts";

/**
 * Python's `json.dumps` byte for byte: ASCII-only output (`é` → `\u00e9`,
 * astral characters as surrogate pairs), separators `, ` and `: ` (`,` and
 * `: ` with an indent), floats as Python's repr (`1.0`, `1e+20`, `1e-07`,
 * `NaN`, `Infinity`). Rendered templates and cache files depend on it.
 */
export interface DumpsOptions {
  /** Like Python's `indent=N`: newline and N spaces per level. */
  indent?: number;
  /** Keep non-ASCII characters (Python's ensure_ascii=False). */
  unicode?: boolean;
}

export function pyDumps(value: PyValue, options: DumpsOptions = {}): string {
  const { indent, unicode = false } = options;
  const itemSep = indent === undefined ? ", " : ",";
  const str = (s: string) => quoteJson(s, unicode);
  const walk = (v: PyValue, level: number): string => {
    if (v === null) return "null";
    switch (typeof v) {
      case "boolean":
        return v ? "true" : "false";
      case "bigint":
        return v.toString();
      case "number":
        return floatJson(v);
      case "string":
        return str(v);
    }
    const open = isList(v) ? "[" : "{";
    const close = isList(v) ? "]" : "}";
    const items = isList(v)
      ? v.map((x) => walk(x, level + 1))
      : isDict(v)
        ? [...v].map(([k, x]) => `${str(k)}: ${walk(x, level + 1)}`)
        : [];
    if (items.length === 0) return open + close;
    if (indent === undefined) return open + items.join(itemSep) + close;
    const pad = "\n" + " ".repeat(indent * (level + 1));
    return open + pad + items.join(itemSep + pad) + "\n" + " ".repeat(indent * level) + close;
  };
  return walk(value, 0);
}

function floatJson(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  return floatRepr(v);
}

/**
 * Python's `repr(float)`: the shortest digits that round-trip (the same
 * digits JavaScript picks), laid out by Python's rule — positional when the
 * decimal exponent is in [-4, 16), else `d.ddde+XX` with at least two
 * exponent digits; positional values always show a `.0`.
 */
export function floatRepr(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (v === 0) return Object.is(v, -0) ? "-0.0" : "0.0";
  const sign = v < 0 ? "-" : "";
  const [mantissa, exp] = Math.abs(v).toExponential().split("e") as [string, string];
  const digits = mantissa.replace(".", "");
  const decpt = Number(exp) + 1; // value = 0.DIGITS × 10^decpt
  if (decpt <= -4 || decpt > 16) {
    const e = decpt - 1;
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\b": "\\b",
  "\f": "\\f",
};

/** A JSON string literal as Python writes it (ensure_ascii escapes everything outside space..~). */
export function quoteJson(s: string, unicode = false): string {
  const re = unicode ? /["\\\x00-\x1f]/g : /["\\]|[^ -~]/g;
  return (
    '"' +
    s.replace(re, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`) +
    '"'
  );
}
