import { existsSync, readFileSync } from "node:fs";
import { z } from "zod";
import { log } from "../../lib/log.ts";
import { parseWith } from "../../lib/validate.ts";
import { parseArgs, type ParserSpec } from "../args.ts";
import { parseJson } from "../pyjson/parse.ts";
import { isList } from "../pyjson/value.ts";
import { booleanKey, printKey } from "./key.ts";
import { collectMetadata, FALLBACK_METADATA, subhash } from "./metadata.ts";
import { renderTree } from "./render.ts";
import { defaultTemplatesDir, findTemplates } from "./templates.ts";
import { writeTree } from "./write.ts";
import { MetadataError } from "../errors.ts";
import { inputFolder } from "../../lib/user-paths.ts";

/**
 * Strict mode, ooo's own (ooo's elements run it): Python's os-apply-config
 * 12.0.0 renders from a templates root that does not exist (nothing) and
 * skips metadata files that do not exist (rendering empty values over good
 * files), and so does ours by default, for scripts that rely on it.
 */
export const STRICT_ENV = "OS_APPLY_CONFIG_STRICT";

function checkStrict(templates: string | undefined, files: string[]) {
  if (templates !== undefined) inputFolder(templates, "the templates root (-t)");
  for (const f of files.filter(Boolean)) if (!existsSync(f)) throw new MetadataError(f, "No such metadata file (--strict)");
}

export const OS_CONFIG_FILES_PATH_DEFAULT = "/var/lib/os-collect-config/os_config_files.json";
const OS_CONFIG_FILES_PATH_OLD = "/var/run/os-collect-config/os_config_files.json";

const spec = (env: NodeJS.ProcessEnv): ParserSpec => ({
  prog: "os-apply-config",
  description:
    "Reads and merges JSON configuration files specified by colon separated environment variable OS_CONFIG_FILES, " +
    "unless overridden by command line option --metadata, and renders the templates tree into the output root.",
  version: "os-apply-config (ooo-agent) 12.0.0",
  options: [
    { flags: ["-t", "--templates"], dest: "templates", kind: "value", metavar: "TEMPLATE_ROOT", help: `path to template root directory (default: ${defaultTemplatesDir(env)})` },
    { flags: ["-o", "--output"], dest: "output", kind: "value", metavar: "OUT_DIR", help: "root directory for output (default: /)" },
    { flags: ["-m", "--metadata"], dest: "metadata", kind: "list", metavar: "METADATA_FILE", help: "overrides OS_CONFIG_FILES (the last -m wins)" },
    { flags: ["--fallback-metadata"], dest: "fallbackMetadata", kind: "list", metavar: "FALLBACK_METADATA", help: "files read before the others" },
    { flags: ["-v", "--validate"], dest: "validate", kind: "flag", help: "validate only; do not write files" },
    { flags: ["--print-templates"], dest: "printTemplates", kind: "flag", help: "print the templates root and exit" },
    { flags: ["-s", "--subhash"], dest: "subhash", kind: "value", help: "use the sub-hash named by this key instead of the full metadata" },
    { flags: ["--key"], dest: "key", kind: "value", metavar: "KEY", help: "print the specified key and exit (with --type and --key-default)" },
    { flags: ["--type"], dest: "type", kind: "value", help: "exit with error if --key does not match type: int|default|netaddress|netdevice|dsn|swiftdevices|username|raw" },
    { flags: ["--key-default"], dest: "keyDefault", kind: "value", help: "print this if --key is not found" },
    { flags: ["--boolean-key"], dest: "booleanKey", kind: "value", help: "exit 0 if the key is true, 1 if false, 255 if not a boolean" },
    { flags: ["--os-config-files"], dest: "osConfigFiles", kind: "value", help: "path of os_config_files.json" },
    {
      flags: ["--strict"],
      dest: "strict",
      kind: "flag",
      help: `refuse a templates root that is not a folder and metadata files that do not exist (the original renders nothing, or empty values, without a word); also ${STRICT_ENV}=1`,
    },
  ],
});

const Options = z.object({
  templates: z.string(),
  output: z.string().default("/"),
  metadata: z.array(z.string()).default([]),
  fallbackMetadata: z.array(z.string()).default(FALLBACK_METADATA),
  validate: z.boolean().default(false),
  printTemplates: z.boolean().default(false),
  subhash: z.string().optional(),
  key: z.string().optional(),
  type: z.string().default("default"),
  keyDefault: z.string().optional(),
  booleanKey: z.string().optional(),
  osConfigFiles: z.string(),
  strict: z.boolean().default(false),
});
type Options = z.infer<typeof Options>;

function loadList(path: string): string[] {
  if (!existsSync(path)) return [];
  let value;
  try {
    value = parseJson(readFileSync(path, "utf8"));
  } catch {
    throw new MetadataError(path, "Could not parse the list of metadata files");
  }
  if (!isList(value)) throw new MetadataError(path, "No list defined in json file");
  return value.map(String);
}

/** Which metadata files to read: -m, else $OS_CONFIG_FILES, else the list os-collect-config wrote. */
export function metadataFiles(o: Options, env: NodeJS.ProcessEnv): string[] {
  if (o.metadata.length) return o.metadata;
  if (env.OS_CONFIG_FILES !== undefined) return env.OS_CONFIG_FILES.split(":");
  let files = loadList(o.osConfigFiles);
  if (files.length === 0 && o.osConfigFiles === (env.OS_CONFIG_FILES_PATH ?? OS_CONFIG_FILES_PATH_DEFAULT)) {
    log.warn(`DEPRECATED: falling back to ${OS_CONFIG_FILES_PATH_OLD}`);
    files = loadList(OS_CONFIG_FILES_PATH_OLD);
  }
  return files;
}

/** os-apply-config. Returns the exit code; OooErrors are reported by the caller (exit 1). */
export async function applyMain(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const raw = parseArgs(argv, spec(env));
  const o = parseWith(
    Options,
    { templates: defaultTemplatesDir(env), osConfigFiles: env.OS_CONFIG_FILES_PATH ?? OS_CONFIG_FILES_PATH_DEFAULT, ...raw },
    "invalid os-apply-config arguments",
  );
  if (o.printTemplates) {
    process.stdout.write(`${o.templates}\n`);
    return 0;
  }
  const files = metadataFiles(o, env);
  if (o.strict || env[STRICT_ENV] === "1") checkStrict(o.key || o.booleanKey ? undefined : o.templates, files);
  if (o.key && o.booleanKey) log.warn("--key is not compatible with --boolean-key. --boolean-key ignored.");

  if (o.key) {
    const metadata = collectMetadata(files, o.fallbackMetadata);
    process.stdout.write(printKey(metadata, o.key, o.type, o.keyDefault, files) + "\n");
    return 0;
  }
  if (o.booleanKey) return booleanKey(collectMetadata(files, o.fallbackMetadata), o.booleanKey);

  const metadata = subhash(collectMetadata(files, o.fallbackMetadata), o.subhash);
  const rendered = await log.step(`render ${o.templates}`, async () => renderTree(findTemplates(o.templates), metadata));
  if (!o.validate) writeTree(o.output, rendered);
  log.info("success");
  return 0;
}
