import { BadRequest, RangeNotSatisfiable } from "./errors.ts";

/**
 * The byte range a download asks for, as Glance reads it: `bytes=a-b`,
 * `bytes=a-` and the suffix `bytes=-n` (RFC 9110), or the legacy request
 * header `Content-Range: bytes a-b/*`. Several ranges → 400; a malformed
 * range or one starting past the end → 416. Returns [start, end) or
 * undefined for the whole.
 */
export function parseRange(
  range: string | null,
  contentRange: string | null,
  size: number,
): { start: number; end: number } | undefined {
  if (range === null && contentRange !== null) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange.trim());
    if (!m) throw new RangeNotSatisfiable(contentRange, size);
    return bounded(Number(m[1]), Number(m[2]), contentRange, size);
  }
  if (range === null) return undefined;
  const spec = range.trim();
  if (!spec.startsWith("bytes=")) throw new RangeNotSatisfiable(range, size);
  const parts = spec.slice(6).split(",");
  if (parts.length > 1) throw new BadRequest("Multiple ranges are not supported");
  const m = /^\s*(\d*)-(\d*)\s*$/.exec(parts[0]!);
  if (!m || (m[1] === "" && m[2] === "")) throw new RangeNotSatisfiable(range, size);
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) throw new RangeNotSatisfiable(range, size);
    return { start: Math.max(0, size - n), end: size };
  }
  return bounded(Number(m[1]), m[2] === "" ? Infinity : Number(m[2]), range, size);
}

function bounded(first: number, last: number, text: string, size: number) {
  if (!Number.isSafeInteger(first) || first >= size || last < first) throw new RangeNotSatisfiable(text, size);
  return { start: first, end: Math.min(last, size - 1) + 1 };
}
