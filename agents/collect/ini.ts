import { InvalidConfigFile } from "../errors.ts";

/** section → key → values in file order (keys with `-` read as `_`). */
export type IniData = Map<string, Map<string, string[]>>;

/**
 * oslo.config's file format: `[section]`, `key = value` or `key: value`,
 * `#` and `;` comment lines, indented continuation lines, a key given again
 * adds a value (multi-valued options such as `collectors` are written one
 * line each). Values are taken verbatim (no unquoting), as oslo does.
 */
export function parseIni(text: string, file: string, into: IniData = new Map()): IniData {
  let section: Map<string, string[]> | undefined;
  let last: { values: string[] } | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.replace(/\s+$/, "");
    if (!line.trim() || /^\s*[#;]/.test(line)) {
      last = undefined;
      return;
    }
    if (/^\s/.test(line) && last) {
      const values = last.values;
      values[values.length - 1] += `\n${line.trim()}`;
      return;
    }
    const header = /^\[([^\]]+)\]$/.exec(line.trim());
    if (header) {
      const name = header[1]!.trim();
      section = into.get(name) ?? new Map();
      into.set(name, section);
      last = undefined;
      return;
    }
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    if (!kv) throw new InvalidConfigFile(file, i + 1, `cannot parse "${line}" (expected key = value)`);
    if (!section) throw new InvalidConfigFile(file, i + 1, "a key before any [section]");
    const key = kv[1]!.trim().replaceAll("-", "_");
    const values = section.get(key) ?? [];
    values.push(kv[2]!);
    section.set(key, values);
    last = { values };
  });
  return into;
}
