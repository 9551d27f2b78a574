import { KeyNotFound, TypeMismatch, UnknownValueType } from "../errors.ts";
import { pyDumps } from "../pyjson/dumps.ts";
import { pyStr } from "../pyjson/repr.ts";
import { isDict, isList, type PyDict, type PyValue } from "../pyjson/value.ts";

/**
 * `--key`, `--type`, `--key-default` and `--boolean-key`: read one value
 * from the merged metadata, with os-apply-config's lookup and type rules.
 *
 * Types are Python `re.match` patterns against Python's `str(value)`, so
 * dicts and lists only pass `raw`, and `$` also matches before one final
 * newline. The `dsn` pattern's `(?#...)` comments are dropped (JavaScript has
 * none); `\d` is Unicode digits, as in Python.
 */
export const VALUE_TYPES: Record<string, RegExp> = {
  int: /^[0-9]+$/u,
  default: /^[A-Za-z0-9_]*$/u,
  netaddress: /^[A-Za-z0-9/.:-]*$/u,
  netdevice: /^[A-Za-z0-9/.:-]*$/u,
  dsn: /^[a-zA-Z0-9]+:\/\/([a-zA-Z0-9+_-]+(:[^@]+)?)?(@?[a-zA-Z0-9/_.-]+)?(\/[a-zA-Z0-9_-]+)?(\?[a-zA-Z0-9=_-]+)?$/u,
  swiftdevices: /^(r\p{Nd}+z\p{Nd}+-[A-Za-z0-9.-_]+:%PORT%\/[^,]+,?)+$/u,
  username: /^[A-Za-z0-9_-]+$/u,
  raw: /(?:)/u,
};

/** Python's re.match with a pattern ending in `$`: the end, or just before a final newline. */
function pyMatch(re: RegExp, s: string): boolean {
  return re.test(s) || (s.endsWith("\n") && re.test(s.slice(0, -1)));
}

export function ensureType(value: string, type: string): void {
  const re = VALUE_TYPES[type];
  if (!re) throw new UnknownValueType(type, Object.keys(VALUE_TYPES));
  if (!pyMatch(re, value)) throw new TypeMismatch(value, type);
}

/** Python's int() of a key part: surrounding whitespace, a sign, digits with single underscores. */
function pyInt(s: string): number | undefined {
  const t = s.trim();
  if (!/^[-+]?\d+(_\d+)*$/.test(t)) return undefined;
  return Number(t.replaceAll("_", ""));
}

/** Walk `a.b.0`: dict keys, integer parts index lists (negative from the end); null counts as missing. */
export function extractKey(metadata: PyDict, key: string): PyValue | undefined {
  let value: PyValue = metadata;
  for (const part of key.split(".")) {
    if (isDict(value) && value.has(part) && value.get(part) !== null) {
      value = value.get(part)!;
      continue;
    }
    if (isDict(value) && value.has(part)) return undefined;
    if (isList(value)) {
      const n = pyInt(part);
      const index: number | undefined = n !== undefined && n < 0 ? value.length + n : n;
      if (index === undefined || index < 0 || index >= value.length) return undefined;
      value = value[index]!;
      continue;
    }
    return undefined;
  }
  return value === null ? undefined : value;
}

/** What `--key` prints (without the newline). */
export function printKey(metadata: PyDict, key: string, type: string, fallback: string | undefined, files: string[]): string {
  const value = extractKey(metadata, key);
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    throw new KeyNotFound(key, files);
  }
  ensureType(pyStr(value), type);
  return isDict(value) || isList(value) || typeof value === "boolean" ? pyDumps(value) : pyStr(value);
}

/** `--boolean-key`: 0 for true, 1 for false, 255 (Python's -1) for anything else. */
export function booleanKey(metadata: PyDict, key: string): number {
  const value = extractKey(metadata, key);
  if (typeof value !== "boolean") return 255;
  return value ? 0 : 1;
}
