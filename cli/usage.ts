import { hideBin } from "yargs/helpers";
import { UsageError } from "../lib/errors.ts";

/**
 * yargs' own complaints ("Unknown argument: nosuchcmd", "Not enough
 * non-option arguments: got 0, need at least 1") in ooo's words: which
 * command is unknown and what the commands are, which argument is missing
 * and the command's usage. yargs' strings are English-only here (no
 * locale), so matching them is stable.
 */

/** What yargs hands a fail handler: the usage of the command being parsed. */
export interface UsageView {
  getCommands(): [string, ...unknown[]][];
  getUsage(): [string, string][];
}

/** Help at the terminal's width (COLUMNS when not a terminal), at most 110 columns. */
export function helpWidth(): number {
  const columns = process.stdout.columns ?? Number(process.env.COLUMNS);
  return Math.min(110, Number.isFinite(columns) && columns > 0 ? columns : 100);
}

const words = (argv: string[]) => argv.filter((w) => !w.startsWith("-"));

/** Edits from a to b (Levenshtein): a typo of a command is one or two. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

export function yargsFailure(message: string, usage: UsageView, argv: string[] = hideBin(process.argv)): string {
  const commands = usage.getCommands().map((c) => c[0].split(" ")[0]!);
  // "ooo store <command>" → the words that name the command so far: ["store"].
  const line = (usage.getUsage()[0]?.[0] ?? "$0").replace("$0", "ooo");
  const named = line.split(" ").slice(1).filter((w) => !/^[<[]/.test(w));
  const level = named.length ? `${named.join(" ")} ` : "";
  if (commands.length) {
    const given = words(argv)[named.length];
    const list = commands.join(", ");
    if (given !== undefined && !commands.includes(given)) {
      const near = commands.find((c) => distance(c, given) <= 2);
      return `unknown command: ooo ${level}${given}.${near ? ` Did you mean ooo ${level}${near}?` : ""} The ${level}commands are: ${list}`;
    }
    const option = given === undefined ? argv.find((a) => a.startsWith("-")) : undefined;
    return `${option ? `unknown option ${option.split("=")[0]}; ` : ""}name a${level ? ` ${level.trim()}` : ""} command: ${list}`;
  }
  let m: RegExpExecArray | null;
  if ((m = /^Not enough non-option arguments: got (\d+)/.exec(message))) {
    const positionals = line.split(" ").filter((w) => w.startsWith("<"));
    const missing = positionals.slice(Number(m[1])).map((p) => p.slice(1, -1).replace(/\.\.$/, "").toUpperCase());
    return `missing ${missing.join(" and ") || "an argument"}: ${line}`;
  }
  if ((m = /^Unknown arguments?: (.*)$/.exec(message))) {
    const names = m[1]!.split(", ");
    const options = names.filter((n) => argv.some((a) => a === `--${n}` || a.startsWith(`--${n}=`) || (n.length === 1 && /^-[^-]/.test(a) && a.includes(n))));
    const extra = names.filter((n) => !options.includes(n));
    return [
      options.length ? `unknown option${options.length > 1 ? "s" : ""} ${options.map((n) => (n.length === 1 ? `-${n}` : `--${n}`)).join(", ")}` : "",
      extra.length ? `unexpected argument${extra.length > 1 ? "s" : ""} ${extra.join(", ")} (usage: ${line})` : "",
    ]
      .filter(Boolean)
      .join("; ");
  }
  if ((m = /^Missing required arguments?: (.*)$/.exec(message)))
    return `missing ${m[1]!
      .split(", ")
      .map((n) => (n.length === 1 ? `-${n}` : `--${n}`))
      .join(", ")}: ${line}`;
  if ((m = /^Invalid values:\s+Argument: (\S+), Given: (.*), Choices: (.*)$/s.exec(message))) return `${m[1]} must be one of ${m[3]}, not ${m[2]}`;
  if ((m = /^Not enough arguments following: (.*)$/.exec(message))) return `${m[1]!.length === 1 ? "-" : "--"}${m[1]} needs a value`;
  return message;
}

/**
 * A flag that takes one value, given twice (`-o a -o b`): yargs makes a
 * list of it, which nothing expects. Refused, naming the flag, before the
 * command runs. Lists (`--tag`, `--seed`, positionals with `..`) are
 * declared as arrays and pass.
 */
export function onlyOnce(argv: Record<string, unknown>, y: { getOptions(): { array: string[]; key: Record<string, unknown>; alias: Record<string, string[]> } }) {
  const options = y.getOptions();
  const lists = new Set(options.array.flatMap((k) => [k, ...(options.alias[k] ?? [])]));
  for (const [key, value] of Object.entries(argv)) {
    if (!Array.isArray(value) || lists.has(key) || key === "_" || key === "$0" || !(key in options.key)) continue;
    const flag = key.length === 1 ? `-${key}` : `--${key}`;
    throw new UsageError(`${flag} was given ${value.length} times (${value.join(", ")}); give it once`);
  }
}
