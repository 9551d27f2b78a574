/** What every bench shares: its `--name value` flags, medians, figures rounded for the table and the JSON. */

const args = process.argv.slice(2);

/** `--name VALUE` from the command line, else `fallback`. */
export const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};

/** `--name` given (a switch). */
export const hasFlag = (name: string) => args.includes(`--${name}`);

/** The middle value (the upper one of an even count). */
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One decimal. */
export const r1 = (n: number) => Math.round(n * 10) / 10;
