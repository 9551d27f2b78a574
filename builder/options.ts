import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { PROGRESS_FILE_DESCRIPTION } from "../lib/progress-file.ts";
import { debianArch, hostArch, UNKNOWN_ARCH } from "./arch.ts";
import { DEFAULT_IMAGE } from "./defaults.ts";

export { hostArch } from "./arch.ts";

/**
 * SOURCE_DATE_EPOCH when the caller sets none: a fixed instant (2024-01-01),
 * so that a build is reproducible by default. Every mtime in the image is
 * clamped to it.
 */
export const DEFAULT_SOURCE_DATE_EPOCH = 1704067200;

/** What the builder's caches default to (DIB's DIB_IMAGE_CACHE default). */
export const defaultImageCache = () => process.env.DIB_IMAGE_CACHE ?? join(homedir(), ".cache", "image-create");

/**
 * One build-image flag: how the command line spells it (disk-image-create's
 * spelling where DIB has the flag), how yargs reads it, what it means (the
 * one text --help and the README show), and the option it validates into.
 */
interface Flag {
  /** The flag without dashes: one letter (-o) or a long name (--image-size). */
  flag: string;
  /** The value's placeholder in the README ("-o NAME"); none for switches. */
  arg?: string;
  yargs: "string" | "boolean" | "number" | "count";
  /** A list flag: values split at these characters (and the flag may repeat). */
  split?: RegExp;
  describe: string;
  schema: z.ZodType;
}

const flag = <S extends z.ZodType>(f: Omit<Flag, "schema"> & { schema: S }) => f;

/**
 * Every build-image flag, declared once. The yargs options, the option
 * schema and the README's flag table (checked by options.test.ts) all come
 * from here. Keys are the names in BuildOptions.
 */
export const FLAGS = {
  output: flag({ flag: "o", arg: "NAME", yargs: "string", describe: `output name without extension (default \`image\`; without elements \`${DEFAULT_IMAGE.output}\`)`, schema: z.string().min(1) }),
  types: flag({
    flag: "t",
    arg: "TYPES",
    yargs: "string",
    split: /,/,
    describe: `comma-separated output types: \`tar\`, \`rootfs\`, \`raw\`, \`qcow2\`, \`ramdisk\` (default \`tar\`; without elements \`${DEFAULT_IMAGE.types.join(",")}\`)`,
    schema: z.array(z.string().min(1)).min(1),
  }),
  arch: flag({
    flag: "a",
    arg: "ARCH",
    yargs: "string",
    describe: "architecture, as Debian names it (default: this machine's); another machine's needs qemu-user-static",
    schema: z
      .string()
      .default(hostArch())
      .transform((a, ctx) => debianArch(a) ?? (ctx.addIssue({ code: "custom", message: `${a} ${UNKNOWN_ARCH}` }), z.NEVER)),
  }),
  skipBase: flag({ flag: "n", yargs: "boolean", describe: "do not add the `base` element", schema: z.boolean().default(false) }),
  packages: flag({
    flag: "p",
    arg: "PKGS",
    yargs: "string",
    split: /,/,
    describe: "extra packages to install, comma-separated (may repeat)",
    schema: z.array(z.string()).default([]),
  }),
  trace: flag({ flag: "x", yargs: "count", describe: "trace hooks (`DIB_DEBUG_TRACE`; `-x -x` for more)", schema: z.number().int().nonnegative().default(0) }),
  uncompressed: flag({ flag: "u", yargs: "boolean", describe: "uncompressed qcow2", schema: z.boolean().default(false) }),
  imageSize: flag({ flag: "image-size", arg: "GB", yargs: "number", describe: "disk size in GB", schema: z.number().positive().optional() }),
  checksum: flag({ flag: "checksum", yargs: "boolean", describe: "write `.md5` and `.sha256` beside each output", schema: z.boolean().default(false) }),
  offline: flag({ flag: "offline", yargs: "boolean", describe: "do not refresh caches from the network (`DIB_OFFLINE`)", schema: z.boolean().default(false) }),
  noTmpfs: flag({ flag: "no-tmpfs", yargs: "boolean", describe: "build on disk instead of in memory", schema: z.boolean().default(false) }),
  logfile: flag({ flag: "logfile", arg: "FILE", yargs: "string", describe: "the full log, appended to (default `NAME.log` beside the output)", schema: z.string().optional() }),
  elementsPath: flag({
    flag: "elements-path",
    arg: "DIR",
    yargs: "string",
    split: /[,:]/,
    describe: "element folders (colon-separated; may repeat) searched before `ELEMENTS_PATH`",
    schema: z.array(z.string()).default([]),
  }),
  imageCache: flag({
    flag: "image-cache",
    arg: "DIR",
    yargs: "string",
    describe: "caches (default `DIB_IMAGE_CACHE` or `~/.cache/image-create`)",
    schema: z.string().min(1),
  }),
  noCache: flag({ flag: "no-cache", yargs: "boolean", describe: "rebuild every layer (new layers are still saved)", schema: z.boolean().default(false) }),
  keepFailed: flag({ flag: "keep-failed", yargs: "boolean", describe: "keep the work folder of a failed build, and say where", schema: z.boolean().default(false) }),
  hookTimeout: flag({ flag: "hook-timeout", arg: "SECONDS", yargs: "number", describe: "kill a hook that runs longer, and fail the build (default: no limit)", schema: z.number().nonnegative().default(0) }),
  envKeep: flag({
    flag: "env-keep",
    arg: "NAME",
    yargs: "string",
    split: /,/,
    describe: "pass this variable to hooks although its name looks secret (`*_TOKEN`, `*_KEY`, …) or is ooo's (`OOO_*`); may repeat",
    schema: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a variable name (letters, digits and _)")).default([]),
  }),
  json: flag({ flag: "json", yargs: "boolean", describe: "print the build manifest as JSON on stdout", schema: z.boolean().default(false) }),
  progressFile: flag({ flag: "progress-file", arg: "FILE", yargs: "string", describe: PROGRESS_FILE_DESCRIPTION, schema: z.string().optional() }),
  force: flag({
    flag: "force",
    yargs: "boolean",
    describe: "replace files in the outputs' way that no earlier build at this -o wrote (an earlier build's own outputs are always replaced)",
    schema: z.boolean().default(false),
  }),
};

type FlagShape = { [K in keyof typeof FLAGS]: (typeof FLAGS)[K]["schema"] };

function flagShape(): FlagShape {
  return Object.fromEntries(Object.entries(FLAGS).map(([key, f]) => [key, f.schema.describe(`${dashed(f.flag)}: ${f.describe}`)])) as FlagShape;
}

export const dashed = (name: string) => (name.length === 1 ? `-${name}` : `--${name}`);

/** The validated options of one build: the flags, plus what the command line gives otherwise. */
export const BuildOptions = z.object({
  elements: z.array(z.string().min(1)).min(1).describe("Elements to build from (DIB: positional)"),
  ...flagShape(),
  /** The command line after `build-image`, as disk-image-create exports it (DIB_ARGS). */
  args: z.array(z.string()).default([]),
  sourceDateEpoch: z.number().int().nonnegative().default(DEFAULT_SOURCE_DATE_EPOCH),
});

export type BuildOptions = z.infer<typeof BuildOptions>;

/** The README's flag table, as the declaration has it. */
export function flagsTable(): string {
  const rows = Object.values(FLAGS).map((f: Flag) => `| \`${dashed(f.flag)}${f.arg ? ` ${f.arg}` : ""}\` | ${f.describe} |`);
  return ["| flag | meaning |", "|---|---|", ...rows].join("\n");
}
