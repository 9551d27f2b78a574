import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { inputFile } from "../../lib/user-paths.ts";
import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { parseWith } from "../../lib/validate.ts";
import { parseArgs, type OptionSpec, type ParserSpec } from "../args.ts";
import { COLLECTORS, DEFAULT_COLLECTORS, UNSUPPORTED_COLLECTORS } from "../collectors/index.ts";
import { settingKey } from "../collectors/types.ts";
import { UnknownCollectors } from "../errors.ts";
import { parseIni, type IniData } from "./ini.ts";

/**
 * os-collect-config's settings, from the same places as the original
 * (oslo.config): the command line, then the config files
 * (/etc/os-collect-config.conf unless --config-file is given, plus a
 * .conf.d folder), then defaults. `[DEFAULT]` holds the general settings,
 * `[NAME]` each collector's (`--NAME-OPTION` on the command line).
 */
export const Settings = z.object({
  command: z.string().optional().describe("command to run on changes; without one, print the collected data and exit"),
  cachedir: z.string().default("/var/lib/os-collect-config"),
  backup_cachedir: z.string().default("/var/run/os-collect-config"),
  collectors: z.array(z.string()).min(1).default(DEFAULT_COLLECTORS),
  one_time: z.boolean().default(false),
  min_polling_interval: z.number().positive().default(1),
  polling_interval: z.number().positive().default(30),
  print_cachedir: z.boolean().default(false),
  force: z.boolean().default(false),
  print_only: z.boolean().default(false),
  deployment_key: z.array(z.string()).min(1).default(["deployments"]),
  splay: z.number().nonnegative().default(0),
  debug: z.boolean().default(false),
});
export type Settings = z.infer<typeof Settings>;

export interface CollectConfig {
  settings: Settings;
  /** Collector name → its settings (underscored key → values). */
  groups: Map<string, Record<string, string[]>>;
  /** The config files read, to notice when they change. */
  configFiles: string[];
}

const GENERAL: OptionSpec[] = [
  { flags: ["-c", "--command"], dest: "command", kind: "value", help: "command to run on metadata changes; without it, print the collected data as JSON and exit" },
  { flags: ["--cachedir"], dest: "cachedir", kind: "value", help: "where the metadata cache is kept (default /var/lib/os-collect-config)" },
  { flags: ["--backup-cachedir"], dest: "backup_cachedir", kind: "value", help: "copy of the cache (default /var/run/os-collect-config)" },
  { flags: ["--one-time"], dest: "one_time", kind: "negatable", help: "exit after one run of the command" },
  { flags: ["--min-polling-interval"], dest: "min_polling_interval", kind: "value", help: "first pause between polls, doubled each time (default 1)" },
  { flags: ["-i", "--polling-interval"], dest: "polling_interval", kind: "value", help: "longest pause between polls (default 30)" },
  { flags: ["--print-cachedir"], dest: "print_cachedir", kind: "negatable", help: "print the cache folder and exit" },
  { flags: ["--force"], dest: "force", kind: "negatable", help: "run the command even if nothing changed; implies --one-time" },
  { flags: ["--print"], dest: "print_only", kind: "negatable", help: "collect, print the data as JSON and exit without running the command" },
  { flags: ["--deployment-key"], dest: "deployment_key", kind: "append", help: "key whose list is split into deployments (default deployments)" },
  { flags: ["--splay"], dest: "splay", kind: "value", help: "sleep up to this many seconds before the first poll (not with --one-time)" },
  { flags: ["--config-file"], dest: "config_file", kind: "append", help: "config file (default /etc/os-collect-config.conf); repeatable" },
  { flags: ["--config-dir"], dest: "config_dir", kind: "append", help: "folder of *.conf files read after the config files" },
  { flags: ["-d", "--debug"], dest: "debug", kind: "negatable", help: "log debug messages" },
  { flags: ["-v", "--verbose"], dest: "verbose", kind: "negatable", help: "accepted for compatibility" },
];

function parserSpec(): ParserSpec {
  const groupOptions: OptionSpec[] = [];
  for (const c of COLLECTORS.values()) {
    for (const o of c.options) {
      groupOptions.push({ flags: [`--${c.name}-${o.name}`], dest: `group:${c.name}:${settingKey(o)}`, kind: o.kind, help: `[${c.name}] ${o.help}` });
    }
  }
  return {
    prog: "os-collect-config",
    description: "Poll metadata sources, cache what they give and run a command when it changed.",
    version: "os-collect-config (ooo-agent) 1.0",
    positional: { dest: "collectors", metavar: "COLLECTOR", help: `collectors to use, in precedence order (default: ${DEFAULT_COLLECTORS.join(" ")})` },
    options: [...GENERAL, ...groupOptions],
  };
}

export function defaultConfigFiles(home = homedir()): { files: string[]; dirs: string[] } {
  const files = [
    join(home, ".os-collect-config/os-collect-config.conf"),
    join(home, "os-collect-config.conf"),
    "/etc/os-collect-config/os-collect-config.conf",
    "/etc/os-collect-config.conf",
  ];
  const dirs = files.map((f) => `${f}.d`);
  const firstFile = files.find((f) => existsSync(f));
  const firstDir = dirs.find((d) => existsSync(d) && statSync(d).isDirectory());
  return { files: firstFile ? [firstFile] : [], dirs: firstDir ? [firstDir] : [] };
}

/** Read config files and folders (*.conf, sorted) into one IniData. */
export function readConfigFiles(files: string[], dirs: string[]): { data: IniData; read: string[] } {
  const data: IniData = new Map();
  const read: string[] = [];
  const all = [...files, ...dirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith(".conf")).sort().map((f) => join(d, f)))];
  for (const f of all) {
    parseIni(readFileSync(inputFile(f, "the config file"), "utf8"), f, data);
    read.push(f);
  }
  return { data, read };
}

/** `heat,local`, `["heat", "local"]` or one name per value: the original took only the last form. */
export function splitCollectors(values: string[]): string[] {
  return values.flatMap((v) => {
    const t = v.trim();
    if (t.startsWith("[")) {
      try {
        const list = JSON.parse(t);
        if (Array.isArray(list)) return list.map(String);
      } catch {
        // not JSON: fall through to separators
      }
    }
    return t.split(/[\s,]+/).filter(Boolean);
  });
}

const BOOL: Record<string, boolean> = { true: true, yes: true, on: true, "1": true, false: false, no: false, off: false, "0": false };

function fileValue(key: string, values: string[]): unknown {
  const last = values[values.length - 1]!;
  switch (key) {
    case "collectors":
      return splitCollectors(values);
    case "deployment_key":
      return values;
    case "one_time":
    case "force":
    case "debug":
    case "print_only":
    case "print_cachedir":
      return BOOL[last.trim().toLowerCase()] ?? last;
    case "min_polling_interval":
    case "polling_interval":
    case "splay":
      return Number(last);
    default:
      return last;
  }
}

export function loadConfig(argv: string[], home?: string): CollectConfig {
  const cli = parseArgs(argv, parserSpec());
  const given = cli.config_file as string[] | undefined;
  const defaults = defaultConfigFiles(home);
  const { data, read } = readConfigFiles(given ?? defaults.files, (cli.config_dir as string[] | undefined) ?? (given ? [] : defaults.dirs));

  const raw: Record<string, unknown> = {};
  for (const [key, values] of data.get("DEFAULT") ?? []) if (key in Settings.shape) raw[key] = fileValue(key, values);
  for (const [dest, value] of Object.entries(cli)) {
    if (dest.startsWith("group:") || dest === "config_file" || dest === "config_dir" || dest === "verbose") continue;
    if (dest === "collectors") raw.collectors = splitCollectors(value as string[]);
    else if (["min_polling_interval", "polling_interval", "splay"].includes(dest)) raw[dest] = Number(value);
    else raw[dest] = value;
  }
  const settings = parseWith(Settings, raw, "invalid os-collect-config settings");
  const unknown = settings.collectors.filter((c) => !COLLECTORS.has(c));
  if (unknown.length) {
    const err = new UnknownCollectors(unknown, [...COLLECTORS.keys()]);
    if (unknown.some((c) => UNSUPPORTED_COLLECTORS.includes(c))) err.hint = `ooo-agent does not implement ${UNSUPPORTED_COLLECTORS.join(" and ")}`;
    throw err;
  }

  const groups = new Map<string, Record<string, string[]>>();
  for (const name of COLLECTORS.keys()) {
    const fromFile = Object.fromEntries(data.get(name) ?? []);
    groups.set(name, { ...fromFile });
  }
  for (const [dest, value] of Object.entries(cli)) {
    if (!dest.startsWith("group:")) continue;
    const [, group, key] = dest.split(":") as [string, string, string];
    groups.get(group)![key] = Array.isArray(value) ? (value as string[]) : [String(value)];
  }
  return { settings, groups, configFiles: read };
}
