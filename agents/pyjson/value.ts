/**
 * JSON values as Python's `json` module sees them. The original agents are
 * Python: they tell `1` (int) from `1.0` (float), keep integers of any size,
 * and keep object keys in document order (`{"2": …, "1": …}` stays in that
 * order). JavaScript's JSON.parse does none of this, and the difference
 * shows in rendered templates and cache files, so the agents carry values in
 * this model instead:
 *
 *   null, boolean, string · bigint = Python int · number = Python float ·
 *   PyValue[] = list · Map = dict (insertion order, like Python 3.7+)
 */
export type PyValue = null | boolean | string | bigint | number | PyValue[] | PyDict;
export type PyDict = Map<string, PyValue>;

export const isDict = (v: PyValue | undefined): v is PyDict => v instanceof Map;
export const isList = (v: PyValue | undefined): v is PyValue[] => Array.isArray(v);

/** Python's truth value: None, False, 0, 0.0, "", [] and {} are false; NaN is true. */
export function truthy(v: PyValue): boolean {
  if (v === null) return false;
  switch (typeof v) {
    case "boolean":
      return v;
    case "bigint":
      return v !== 0n;
    case "number":
      return v !== 0;
    case "string":
      return v.length > 0;
  }
  return isList(v) ? v.length > 0 : v.size > 0;
}

/** A plain JavaScript value (for zod schemas and JSON.stringify); ints beyond 2^53 lose precision. */
export function toPlain(v: PyValue): unknown {
  if (typeof v === "bigint") return Number(v);
  if (isList(v)) return v.map(toPlain);
  if (isDict(v)) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) o[k] = toPlain(x);
    return o;
  }
  return v;
}

/** From a plain JavaScript value: integral numbers become ints, others floats. */
export function fromPlain(v: unknown): PyValue {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return Number.isInteger(v) ? BigInt(v) : v;
  if (typeof v === "boolean" || typeof v === "string" || typeof v === "bigint") return v;
  if (Array.isArray(v)) return v.map(fromPlain);
  if (typeof v === "object") {
    const m: PyDict = new Map();
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) m.set(k, fromPlain(x));
    return m;
  }
  throw new TypeError(`not a JSON value: ${typeof v}`);
}

/** Deep copy (Python's copy.deepcopy of JSON data). */
export function deepCopy(v: PyValue): PyValue {
  if (isList(v)) return v.map(deepCopy);
  if (isDict(v)) return new Map([...v].map(([k, x]) => [k, deepCopy(x)] as const));
  return v;
}

/** Python `==` on JSON data: dict order ignored; True == 1 == 1.0; NaN != NaN. */
export function pyEqual(a: PyValue, b: PyValue): boolean {
  const na = numeric(a);
  const nb = numeric(b);
  if (na !== undefined || nb !== undefined) {
    if (na === undefined || nb === undefined) return false;
    return numbersEqual(na, nb);
  }
  if (a === null || b === null) return a === b;
  if (typeof a === "string" || typeof b === "string") return a === b;
  if (isList(a) && isList(b)) return a.length === b.length && a.every((x, i) => pyEqual(x, b[i]!));
  if (isDict(a) && isDict(b)) {
    if (a.size !== b.size) return false;
    for (const [k, x] of a) {
      if (!b.has(k) || !pyEqual(x, b.get(k)!)) return false;
    }
    return true;
  }
  return false;
}

function numeric(v: PyValue): bigint | number | undefined {
  if (typeof v === "boolean") return v ? 1n : 0n;
  if (typeof v === "bigint" || typeof v === "number") return v;
  return undefined;
}

function numbersEqual(a: bigint | number, b: bigint | number): boolean {
  if (typeof a === "bigint" && typeof b === "bigint") return a === b;
  if (typeof a === "number" && typeof b === "number") return a === b;
  const [i, f] = typeof a === "bigint" ? [a, b as number] : [b as bigint, a as number];
  // Python compares int and float exactly, not after rounding the int.
  return Number.isInteger(f) && BigInt(f) === i;
}
