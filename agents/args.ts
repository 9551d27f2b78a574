import { UsageError } from "../lib/errors.ts";

/**
 * A small command-line parser with argparse's rules, because the agents must
 * accept exactly what the Python originals accept (scripts call them):
 * `--opt value` and `--opt=value`, `-o value` and `-ovalue`, unique prefixes
 * of long options (`--temp` for `--templates`), `nargs='*'` options that take
 * every following word up to the next option (a repeated one replaces the
 * earlier list, as argparse does), repeatable options, positionals, `--`.
 * yargs parses differently (greedy arrays, no prefix matching), and these
 * grammars are fixed by compatibility.
 *
 * The result is a plain record; each agent validates it with zod.
 */
export interface OptionSpec {
  /** `-t`, `--templates`, … */
  flags: string[];
  dest: string;
  /** flag: true when present · value: one word · list: nargs='*' · append: repeatable · negatable flag: --no-X sets false. */
  kind: "flag" | "value" | "list" | "append" | "negatable";
  help?: string;
  metavar?: string;
}

export interface ParserSpec {
  prog: string;
  description: string;
  options: OptionSpec[];
  /** Name for positional words; absent: positionals are an error. */
  positional?: { dest: string; metavar: string; help: string };
  version?: string;
}

export class HelpRequested extends Error {
  constructor(readonly text: string) {
    super(text);
  }
}

function looksLikeOption(word: string): boolean {
  return word.startsWith("-") && word !== "-" && !/^-\d+(\.\d*)?$/.test(word);
}

export function usage(spec: ParserSpec): string {
  const lines = [`usage: ${spec.prog} [options]${spec.positional ? ` [${spec.positional.metavar} ...]` : ""}`, "", spec.description, ""];
  if (spec.positional) lines.push(`  ${spec.positional.metavar.padEnd(34)} ${spec.positional.help}`);
  lines.push(`  ${"-h, --help".padEnd(34)} show this help message and exit`);
  for (const o of spec.options) {
    const arg = o.kind === "flag" || o.kind === "negatable" ? "" : ` ${o.metavar ?? o.dest.toUpperCase()}${o.kind === "list" ? " ..." : ""}`;
    const names = o.flags.join(", ") + arg;
    lines.push(`  ${names.padEnd(34)} ${o.help ?? ""}`.trimEnd());
  }
  return lines.join("\n") + "\n";
}

export function parseArgs(argv: string[], spec: ParserSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const longs = new Map<string, OptionSpec>();
  const shorts = new Map<string, OptionSpec>();
  const HELP: OptionSpec = { flags: ["-h", "--help"], dest: "", kind: "flag" };
  const VERSION: OptionSpec = { flags: spec.version ? ["--version"] : [], dest: "", kind: "flag" };
  for (const o of [HELP, VERSION, ...spec.options]) {
    for (const f of o.flags) (f.startsWith("--") ? longs : shorts).set(f, o);
    if (o.kind === "negatable") for (const f of o.flags) if (f.startsWith("--")) longs.set(`--no-${f.slice(2)}`, o);
  }
  const positionals: string[] = [];
  const fail = (message: string): never => {
    throw new UsageError(`${spec.prog}: ${message}`);
  };

  const findLong = (name: string): [OptionSpec, string] | undefined => {
    const exact = longs.get(name);
    if (exact) return [exact, name];
    const candidates = [...longs.keys()].filter((k) => k.startsWith(name));
    const distinct = new Set(candidates.map((k) => longs.get(k)));
    if (candidates.length > 0 && distinct.size === 1) return [longs.get(candidates[0]!)!, candidates[0]!];
    if (candidates.length > 1) fail(`ambiguous option: ${name} could match ${candidates.join(", ")}`);
    return undefined;
  };

  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!looksLikeOption(word)) {
      positionals.push(word);
      continue;
    }
    let opt: OptionSpec | undefined;
    let usedName = word;
    let inline: string | undefined;
    if (word.startsWith("--")) {
      const eq = word.indexOf("=");
      const name = eq >= 0 ? word.slice(0, eq) : word;
      if (eq >= 0) inline = word.slice(eq + 1);
      const found = findLong(name);
      if (!found) fail(`unrecognized arguments: ${word}`);
      [opt, usedName] = found!;
    } else {
      const name = word.slice(0, 2);
      opt = shorts.get(name);
      if (!opt) fail(`unrecognized arguments: ${word}`);
      if (word.length > 2) inline = word.slice(2);
    }
    const o = opt!;
    if (o === HELP) throw new HelpRequested(usage(spec));
    if (o === VERSION) throw new HelpRequested(`${spec.version}\n`);
    switch (o.kind) {
      case "flag":
      case "negatable":
        if (inline !== undefined) fail(`argument ${usedName}: ignored explicit argument '${inline}'`);
        out[o.dest] = !usedName.startsWith("--no-");
        break;
      case "value":
      case "append": {
        let value = inline;
        if (value === undefined) {
          const next = argv[i + 1];
          if (next === undefined || looksLikeOption(next)) fail(`argument ${usedName}: expected one argument`);
          value = next!;
          i++;
        }
        if (o.kind === "value") out[o.dest] = value;
        else out[o.dest] = [...((out[o.dest] as string[] | undefined) ?? []), value];
        break;
      }
      case "list": {
        const values: string[] = inline !== undefined ? [inline] : [];
        while (inline === undefined && i + 1 < argv.length && !looksLikeOption(argv[i + 1]!) && argv[i + 1] !== "--") values.push(argv[++i]!);
        out[o.dest] = values;
        break;
      }
    }
  }
  if (positionals.length) {
    if (!spec.positional) fail(`unrecognized arguments: ${positionals.join(" ")}`);
    out[spec.positional!.dest] = positionals;
  }
  return out;
}
