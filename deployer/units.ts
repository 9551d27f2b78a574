/**
 * Sizes and durations as people write them in a stack file: `768M`, `2G`,
 * `8GiB`, a bare number in the field's default unit; `30s`, `2m`, `1h`,
 * `500ms`, a bare number of seconds. Binary units throughout (1G = 2^30), as
 * qemu and Nova flavors count memory.
 */
const BYTE_UNITS: Record<string, number> = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };
export const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*$/;

/** Bytes from a size: a number counts in `unit` bytes, a string may carry its own unit. */
export function parseSize(value: number | string, unit: number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? Math.round(value * unit) : undefined;
  const m = SIZE_RE.exec(value);
  if (!m) return undefined;
  const factor = m[2] ? BYTE_UNITS[m[2].toLowerCase()]! : unit;
  return Math.round(Number(m[1]) * factor);
}

export const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/;
const SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

export function parseDuration(value: number | string): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = DURATION_RE.exec(value);
  return m ? Number(m[1]) * SECONDS[m[2] ?? "s"]! : undefined;
}

export const MiB = 2 ** 20;
export const GiB = 2 ** 30;
