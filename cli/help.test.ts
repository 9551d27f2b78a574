import { describe, expect, test } from "bun:test";
import { join } from "node:path";

/**
 * `ooo <cmd> --help` for every command, at 80 and 120 columns: read as a
 * newcomer would, by rules that catch what made it hard to read before
 * (issue 24): every positional and option described, no line wider than the
 * terminal, no command or "[type]" broken over two lines, examples whole.
 * The texts are snapshots too, so that a change of wording is reviewed.
 * Commands are found by walking the help itself: a new one is covered.
 */
const CLI = join(import.meta.dir, "ooo.ts");

async function help(args: string[], columns: number): Promise<string> {
  const p = Bun.spawn(["bun", CLI, ...args, "--help"], { env: { ...process.env, COLUMNS: String(columns), NO_COLOR: "1" }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`ooo ${args.join(" ")} --help exited ${code}: ${err}`);
  return out;
}

/** The section of a help text under `title` (up to the next blank line). */
function section(text: string, title: string): string[] {
  const lines = text.split("\n");
  const start = lines.indexOf(`${title}:`);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && l === "");
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Subcommands listed under "Commands:", as argument lists. */
function subcommands(text: string, parent: string[]): string[][] {
  return section(text, "Commands")
    .map((l) => /^ {2}ooo ((?:[a-z][a-z-]* ?)+)/.exec(l)?.[1]?.trim().split(" "))
    .filter((words): words is string[] => Boolean(words) && words!.length === parent.length + 1);
}

/** Every command's help at `columns`, found by walking the "Commands:" lists (siblings in parallel). */
async function allHelp(columns: number): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  const walk = async (path: string[]): Promise<void> => {
    const text = await help(path, columns);
    texts.set(path.join(" "), text);
    await Promise.all(subcommands(text, path).map(walk));
  };
  await walk([]);
  return new Map([...texts].sort(([a], [b]) => a.localeCompare(b)));
}

/** What makes a help text hard to read; empty when it reads cleanly. */
export function helpProblems(text: string, columns: number): string[] {
  const problems: string[] = [];
  for (const line of text.split("\n")) {
    if (line.length > columns) problems.push(`wider than ${columns}: ${line}`);
    if (/\[(string|boolean|number|array|count|required)\]|\[default: |\[choices: /.test(line)) problems.push(`a yargs type column: ${line}`);
    if ((line.match(/`/g) ?? []).length % 2) problems.push(`a quoted command broken over two lines: ${line}`);
    if (/ ooo$/.test(line)) problems.push(`a command broken after "ooo": ${line}`);
    if ((line.match(/\$\(/g) ?? []).length !== (line.match(/\)"/g) ?? []).length && line.includes("$(")) problems.push(`a command substitution broken: ${line}`);
  }
  for (const line of section(text, "Examples"))
    if (!/^ {2}(ooo |# |[A-Z_]+=|eval ")/.test(line)) problems.push(`an example broken over two lines: ${line}`);
  // An entry is "  name  description"; a line of only a name lacks its description.
  for (const title of ["Positionals", "Options", "Commands"]) {
    for (const line of section(text, title)) {
      const entry = /^ {2}(-\S+(, -\S+)?|\S+|ooo [^ ].*?)( {2,}|$)(.*)$/.exec(line);
      if (entry && !entry[4]?.trim() && !/^ {6,}/.test(line)) problems.push(`${title.toLowerCase()} entry without a description: ${line}`);
    }
  }
  return problems;
}

describe("--help of every command reads cleanly", () => {
  for (const columns of [80, 120]) {
    test(`at ${columns} columns`, async () => {
      const texts = await allHelp(columns);
      for (const c of ["build-image", "element-info", "store fetch", "store gc", "key generate", "deploy", "scale", "power", "store-env"]) expect([...texts.keys()]).toContain(c);
      const problems = [...texts].flatMap(([name, text]) => helpProblems(text, columns).map((p) => `ooo ${name} --help: ${p}`));
      expect(problems).toEqual([]);
      expect(Object.fromEntries(texts)).toMatchSnapshot();
    }, 60_000);
  }

  test("the rules catch what they are for", () => {
    const bad = "Options:\n  --logfile  the full log (default NAME.log beside the output)[string]\n  --dir\n\nExamples:\n  ooo store fetch x --seed /   seed from the running root\n  -o /mnt/new.tar\n";
    const found = helpProblems(bad, 80).join("\n");
    expect(found).toContain("a yargs type column");
    expect(found).toContain("options entry without a description:   --dir");
    expect(found).toContain("an example broken over two lines:   -o /mnt/new.tar");
    expect(helpProblems("x".repeat(81), 80)).toEqual([`wider than 80: ${"x".repeat(81)}`]);
  });
});
