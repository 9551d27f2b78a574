import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Argv, CommandModule } from "yargs";
import { stringify as toYaml } from "yaml";
import { PathProblem, UsageError } from "../lib/errors.ts";
import { withExamples } from "../lib/help.ts";
import { folderToWrite, outputFile, outputFiles } from "../lib/user-paths.ts";
import { checkArchRunnable } from "./arch.ts";
import { resolveOutputTypes } from "./outputs/index.ts";
import { fileSink, formatSeconds, log, table } from "../lib/log.ts";
import { attachProgressFile } from "../lib/progress-file.ts";
import { parseWith } from "../lib/validate.ts";
import { build, resolveBuildElements, type BuildResult } from "./build.ts";
import { DEFAULT_IMAGE } from "./defaults.ts";
import { ManifestV1 } from "../wire/manifest.ts";
import { NotRoot } from "./errors.ts";
import { discoverElements, elementsPath } from "./elements/discover.ts";
import { expandDependencies } from "./elements/resolve.ts";
import { insideBuildNamespace, LAUNCHER_PID, relaunchInNamespace } from "./namespace.ts";
import { BuildOptions, dashed, DEFAULT_SOURCE_DATE_EPOCH, defaultImageCache, FLAGS } from "./options.ts";
import { prepareWorkDir } from "./workdir.ts";

const splitList = (values: unknown, at: RegExp = /,/) =>
  (values === undefined ? [] : Array.isArray(values) ? values : [values]).flatMap((v) => String(v).split(at)).map((v) => v.trim()).filter(Boolean);

/** How yargs reads a flag: a list flag may repeat, one value per occurrence (so it never swallows the elements after it). */
const yargsOption = (f: (typeof FLAGS)[keyof typeof FLAGS]) => ({
  type: f.yargs,
  ...("split" in f ? { array: true, nargs: 1 } : {}),
  describe: `${f.arg ? `${f.arg}: ` : ""}${f.describe.replaceAll("`", "")}`,
});

function buildImageArgs(y: Argv) {
  y.usage(
    "$0 build-image [options] ELEMENT...\n\n" +
      "Build an image from elements, with disk-image-create's flags. Without elements,\n" +
      `build the default image (${DEFAULT_IMAGE.elements.join(" ")}) to ${DEFAULT_IMAGE.output}.`,
  ).positional("elements", { type: "string", array: true, describe: "the elements to build from (their dependencies are added)" });
  for (const f of Object.values(FLAGS)) y.option(f.flag, yargsOption(f));
  return withExamples(y, [
    ["$0 build-image -o out/tiny -t tar busybox-base", "a tiny root, in a second"],
    ["$0 build-image -o out/node -t qcow2 debian-minimal", "a Debian golden disk"],
  ]);
}

type BuildImageArgs = Record<string, unknown> & { elements?: string[] };

/** The command line as given after `build-image` (DIB_ARGS). */
function argsAfterCommand(): string[] {
  const at = process.argv.indexOf("build-image");
  return at < 0 ? [] : process.argv.slice(at + 1);
}

/** Parse the flags as declared (options.ts), then the rules between them; zod checks the result. */
export function optionsFromArgs(argv: BuildImageArgs, args: string[] = argsAfterCommand()): BuildOptions {
  const given: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(FLAGS) as [string, (typeof FLAGS)[keyof typeof FLAGS]][]) {
    const value = argv[f.flag];
    if (value === undefined) continue;
    given[key] = "split" in f ? splitList(value, f.split) : value;
  }
  const elements = splitList(argv.elements);
  const useDefault = elements.length === 0;
  const epoch = process.env.SOURCE_DATE_EPOCH;
  const types = given.types as string[] | undefined;
  const flagOf = (path: PropertyKey[]) => {
    const f = FLAGS[path[0] as keyof typeof FLAGS];
    return f ? dashed(f.flag) : undefined;
  };
  return parseWith(
    BuildOptions,
    {
      ...given,
      elements: useDefault ? DEFAULT_IMAGE.elements : elements,
      output: given.output ?? (useDefault ? DEFAULT_IMAGE.output : "image"),
      types: types ?? (useDefault ? DEFAULT_IMAGE.types : ["tar"]),
      offline: given.offline || process.env.DIB_OFFLINE === "1",
      // A kept work folder must outlive the build's namespace, so it cannot be a tmpfs.
      noTmpfs: given.noTmpfs || given.keepFailed,
      imageCache: given.imageCache ?? defaultImageCache(),
      args,
      sourceDateEpoch: epoch === undefined ? DEFAULT_SOURCE_DATE_EPOCH : Number(epoch),
    },
    "invalid build-image options",
    { nameOf: flagOf },
  );
}

/**
 * Everything the command line names, checked before the build starts (and
 * before the relaunch into the build namespace, so that nothing — not even
 * the log — is written for a mistake): the elements and their dependencies,
 * the output types, the architecture, and every path: outputs (refused when
 * they exist, unless --force), log, progress file, caches.
 */
function checkBeforeBuild(options: BuildOptions) {
  resolveBuildElements(options);
  const types = resolveOutputTypes(options.types);
  checkArchRunnable(options.arch);
  if (options.output.endsWith("/"))
    throw new PathProblem(options.output, `names a folder; -o is a name without extension (-o ${options.output}image writes ${options.output}image.${types[0]!.name})`, "-o");
  const files = [...new Set(types.flatMap((t) => t.files ?? [t.name]))].map((ext) => `${options.output}.${ext}`);
  const sums = options.checksum ? files.flatMap((f) => [`${f}.md5`, `${f}.sha256`]) : [];
  const rebuilt = previousBuild(options.output);
  const wanted = [`${options.output}.manifest.json`, ...files, ...sums];
  // A rebuild replaces its own earlier outputs, as disk-image-create does (each only once the new
  // one is complete); anything else in the way is refused without --force.
  outputFiles(wanted.filter((f) => !rebuilt.has(resolve(f))), "-o", { force: options.force });
  outputFiles(wanted.filter((f) => rebuilt.has(resolve(f))), "-o", { force: true });
  // Logs are appended to, never replaced.
  outputFile(options.logfile ?? `${options.output}.log`, "--logfile", { force: true });
  if (options.progressFile && !options.progressFile.startsWith("/dev/")) outputFile(options.progressFile, "--progress-file", { force: true });
  folderToWrite(options.imageCache, "--image-cache");
}

/**
 * The files an earlier build wrote at this -o: its manifest, the artifacts
 * it lists and their checksum files. None when there is no manifest there,
 * or it is not an ooo manifest.
 */
function previousBuild(output: string): Set<string> {
  const manifestFile = resolve(`${output}.manifest.json`);
  let parsed;
  try {
    parsed = ManifestV1.safeParse(JSON.parse(readFileSync(manifestFile, "utf8")));
  } catch {
    return new Set();
  }
  if (!parsed.success) return new Set();
  const files = parsed.data.artifacts.map((a) => resolve(dirname(manifestFile), a.file));
  return new Set([manifestFile, ...files, ...files.flatMap((f) => [`${f}.md5`, `${f}.sha256`])]);
}

function summary(result: BuildResult): string {
  const byPhase = new Map<string, { hooks: number; seconds: number; cached: number }>();
  for (const h of result.hooks) {
    const p = byPhase.get(h.phase) ?? { hooks: 0, seconds: 0, cached: 0 };
    p.hooks++;
    p.seconds += h.seconds;
    if (h.cached) p.cached++;
    byPhase.set(h.phase, p);
  }
  const phases = table(
    ["phase", "hooks", "cached", "seconds"],
    [...byPhase].map(([phase, p]) => [phase, p.hooks, p.cached, Number(p.seconds.toFixed(1))]),
  );
  const slowest = [...result.hooks]
    .filter((h) => !h.cached)
    .sort((a, b) => b.seconds - a.seconds)
    .slice(0, 5)
    .map((h) => [`${h.phase}/${h.name}`, h.element, Number(h.seconds.toFixed(1))]);
  const artifacts = table(
    ["type", "file", "MiB", "sha256"],
    result.artifacts.map((a) => [a.type, a.path, Number((a.size / 2 ** 20).toFixed(1)), a.sha256]),
  );
  const digest = `image digest ${result.manifest.digest}\nmanifest     ${result.manifestPath}`;
  return [
    "",
    phases,
    "",
    slowest.length ? table(["slowest hooks", "element", "seconds"], slowest) + "\n" : "",
    artifacts,
    "",
    digest,
    `built in ${formatSeconds(result.seconds)}`,
  ].join("\n");
}

export const buildImageCommand: CommandModule<object, BuildImageArgs> = {
  command: "build-image [elements..]",
  describe: "build an image from elements (disk-image-create's flags)",
  builder: (y) => buildImageArgs(y) as unknown as Argv<BuildImageArgs>,
  handler: async (argv) => {
    const options = optionsFromArgs(argv);
    if (!insideBuildNamespace() && !splitList(argv.elements).length)
      log.info(`no elements given: building the default image (${DEFAULT_IMAGE.elements.join(" ")}) to ${options.output}`);
    // Before the relaunch: unprivileged, unshare would only say "Operation not permitted".
    if (process.getuid?.() !== 0) throw new NotRoot();
    if (!insideBuildNamespace()) {
      checkBeforeBuild(options);
      process.exitCode = await relaunchInNamespace({
        imageCache: options.imageCache,
        onDisk: options.noTmpfs,
        keepFailed: options.keepFailed,
        passFds: [Number(/^\/dev\/fd\/(\d+)$/.exec(options.progressFile ?? "")?.[1] ?? 0)].filter((fd) => fd > 2),
      });
      return;
    }
    log.addSink(fileSink(resolve(options.logfile ?? `${options.output}.log`)));
    attachProgressFile(options.progressFile);
    const workDir = await prepareWorkDir({
      imageCache: options.imageCache,
      onDisk: options.noTmpfs,
      launcherPid: Number(process.env[LAUNCHER_PID] ?? process.pid),
    });
    try {
      const result = await build({ options, workDir });
      process.stderr.write(summary(result) + "\n");
      if (options.json) process.stdout.write(JSON.stringify(result.manifest, null, 2) + "\n");
    } catch (e) {
      if (options.keepFailed) log.error(`the work folder is kept for inspection: ${workDir}`);
      throw e;
    }
  },
};

type ElementInfoArgs = { elements: string[]; env?: boolean; list?: boolean; "expand-dependencies"?: boolean; "elements-path"?: string[] };

export const elementInfoCommand: CommandModule<object, ElementInfoArgs> = {
  command: "element-info [elements..]",
  describe: "show elements and their expanded dependencies (DIB's element-info)",
  builder: (y) =>
    y
      .positional("elements", { type: "string", array: true, default: [], defaultDescription: "none", describe: "the elements to expand (with --list: none)" })
      .option("expand-dependencies", { type: "boolean", describe: "print the expanded set (the default)" })
      .option("env", { alias: "e", type: "boolean", describe: "print eval-able IMAGE_ELEMENT variables" })
      .option("list", { type: "boolean", describe: "list every element found and its folder" })
      .option("elements-path", yargsOption(FLAGS.elementsPath))
      .example("$0 element-info --expand-dependencies debian-minimal vm", "") as unknown as Argv<ElementInfoArgs>,
  handler: (argv) => {
    const all = discoverElements(elementsPath(splitList(argv["elements-path"], FLAGS.elementsPath.split)));
    if (argv.list) {
      for (const e of [...all.values()].sort((a, b) => a.name.localeCompare(b.name))) process.stdout.write(`${e.name}\t${e.dir}\n`);
      return;
    }
    if (!argv.elements.length) throw new UsageError("element-info needs at least one element (or --list)");
    const expanded = expandDependencies(argv.elements, all);
    if (argv.env) {
      process.stdout.write(`export IMAGE_ELEMENT='${expanded.map((e) => e.name).join(" ")}'\n`);
      process.stdout.write(`export IMAGE_ELEMENT_YAML='${toYaml(Object.fromEntries(expanded.map((e) => [e.name, e.dir])))}'\n`);
      // DIB: bash cannot export arrays, so an exported function prints one
      // (`eval declare -A a=($(get_image_element_array))`).
      process.stdout.write(
        `function get_image_element_array {\n  echo "${expanded.map((e) => `[${e.name}]=${e.dir} `).join("")}"\n};\nexport -f get_image_element_array;\n`,
      );
      return;
    }
    process.stdout.write(expanded.map((e) => e.name).join(" ") + "\n");
  },
};
