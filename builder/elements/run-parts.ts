/**
 * dib-run-parts' selection and order, shared by the builder (hooks) and by
 * anything else that runs a DIB-style phase directory.
 *
 * Selection: regular files (symlinks followed) that are executable and whose
 * name matches RUN_PARTS_REGEX (default `^[0-9A-Za-z_-]+$`, so `foo.sh` is
 * silently skipped). Order: `LANG=C sort -n` — by leading number (none = 0),
 * ties broken bytewise on the whole name.
 */
export const DEFAULT_RUN_PARTS_REGEX = /^[0-9A-Za-z_-]+$/;

/** `sort -n`'s key in the C locale: optional '-', digits, optional '.digits'. */
function numericKey(name: string): { negative: boolean; int: string; frac: string } {
  const m = /^[ \t]*(-?)(\d*)(?:\.(\d*))?/.exec(name)!;
  const int = (m[2] ?? "").replace(/^0+/, "");
  const frac = (m[3] ?? "").replace(/0+$/, "");
  const zero = int === "" && frac === "";
  return { negative: m[1] === "-" && !zero, int, frac };
}

function compareMagnitude(a: { int: string; frac: string }, b: { int: string; frac: string }): number {
  if (a.int.length !== b.int.length) return a.int.length - b.int.length;
  if (a.int !== b.int) return a.int < b.int ? -1 : 1;
  if (a.frac !== b.frac) return a.frac < b.frac ? -1 : 1;
  return 0;
}

function compareBytes(a: string, b: string): number {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return Buffer.compare(ba, bb);
}

export function compareRunParts(a: string, b: string): number {
  const ka = numericKey(a);
  const kb = numericKey(b);
  let c: number;
  if (ka.negative !== kb.negative) c = ka.negative ? -1 : 1;
  else c = ka.negative ? -compareMagnitude(ka, kb) : compareMagnitude(ka, kb);
  return c !== 0 ? c : compareBytes(a, b);
}

export function runPartsRegex(env: Record<string, string | undefined> = process.env): RegExp {
  const custom = env.RUN_PARTS_REGEX;
  return custom ? new RegExp(custom) : DEFAULT_RUN_PARTS_REGEX;
}

/** Names that dib-run-parts would run, in its order. */
export function orderRunParts(names: Iterable<string>, regex: RegExp = DEFAULT_RUN_PARTS_REGEX): string[] {
  return [...names].filter((n) => regex.test(n)).sort(compareRunParts);
}

/**
 * environment.d files: any name of `[0-9A-Za-z_.-]+`, no exec bit needed,
 * sourced in BYTE order of the name — not numeric. dib-run-parts pipes the
 * full paths (`…/environment.d/NAME`) to `LANG=C sort -n`; a path has no
 * leading number, so every key is 0 and the bytewise tie-break decides:
 * `10-b` is sourced before `9-a`.
 */
export function orderEnvironmentFiles(names: Iterable<string>): string[] {
  return [...names].filter((n) => /^[0-9A-Za-z_.-]+$/.test(n)).sort(compareBytes);
}
