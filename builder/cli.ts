import { resolve } from "node:path";
import type { Argv, CommandModule } from "yargs";
import { stringify as toYaml } from "yaml";
import { UsageError } from "../lib/errors.ts";
import { fileSink, formatSeconds, log, table, terminalSink } from "../lib/log.ts";
import { parseWith } from "../lib/validate.ts";
import { build, type BuildResult } from "./build.ts";
import { DEFAULT_IMAGE } from "./defaults.ts";
import { NotRoot } from "./errors.ts";
import { discoverElements, elementsPath } from "./elements/discover.ts";
import { expandDependencies } from "./elements/resolve.ts";
import { insideBuildNamespace, LAUNCHER_PID, relaunchInNamespace } from "./namespace.ts";
import { BuildOptions, DEFAULT_SOURCE_DATE_EPOCH } from "./options.ts";
import { OUTPUT_TYPES } from "./outputs/index.ts";
import { prepareWorkDir } from "./workdir.ts";

const splitList = (values: string | string[] | undefined) =>
  (values === undefined ? [] : Array.isArray(values) ? values : [values]).flatMap((v) => String(v).split(",")).map((v) => v.trim()).filter(Boolean);

function buildImageArgs(y: Argv) {
  return y
    .usage(
      "$0 build-image [options] ELEMENT...\n\n" +
        "Build an image from elements, with disk-image-create's flags. Without elements,\n" +
        `build the default image (${DEFAULT_IMAGE.elements.join(" ")}) to ${DEFAULT_IMAGE.output}.`,
    )
    .positional("elements", { type: "string", array: true, describe: "elements to build from" })
    .option("o", { type: "string", describe: "output name without extension (DIB: -o)", default: undefined })
    .option("t", {
      type: "string",
      describe: `output types, comma-separated: ${[...OUTPUT_TYPES.keys()].join(", ")}`,
    })
    .option("a", { type: "string", describe: "architecture (amd64)" })
    .option("x", { type: "count", describe: "trace hooks (DIB_DEBUG_TRACE)" })
    .option("n", { type: "boolean", describe: "do not add the base element" })
    .option("p", { type: "string", describe: "extra packages to install, comma-separated" })
    .option("u", { type: "boolean", describe: "uncompressed qcow2" })
    .option("image-size", { type: "number", describe: "disk image size in GB" })
    .option("checksum", { type: "boolean", describe: "write .md5 and .sha256 files beside each output" })
    .option("offline", { type: "boolean", describe: "do not refresh caches from the network (DIB_OFFLINE)" })
    .option("no-tmpfs", { type: "boolean", describe: "build on disk instead of a tmpfs" })
    .option("logfile", { type: "string", describe: "full log file (default: OUTPUT.log)" })
    .option("image-cache", { type: "string", describe: "cache folder (DIB_IMAGE_CACHE, ~/.cache/image-create)" })
    .option("elements-path", { type: "string", describe: "element folders (colon-separated), searched before ELEMENTS_PATH" })
    .option("no-cache", { type: "boolean", describe: "ignore cached layers; rebuild everything" })
    .option("keep-failed", { type: "boolean", describe: "keep the work folder of a failed build and print it" })
    .option("hook-timeout", { type: "number", describe: "kill a hook after this many seconds" })
    .option("json", { type: "boolean", describe: "print the build manifest as JSON on stdout" })
    .example("$0 build-image -o out/tiny -t tar busybox-base", "a tiny root tarball")
    .example("$0 build-image -o out/node -t qcow2 debian-minimal", "a Debian golden disk image");
}

type BuildImageArgs = Awaited<ReturnType<ReturnType<typeof buildImageArgs>["parseAsync"]>> & { elements?: string[] };

export function optionsFromArgs(argv: BuildImageArgs): BuildOptions {
  const elements = splitList(argv.elements);
  const useDefault = elements.length === 0;
  const epoch = process.env.SOURCE_DATE_EPOCH;
  return parseWith(
    BuildOptions,
    {
      elements: useDefault ? DEFAULT_IMAGE.elements : elements,
      output: argv.o ?? (useDefault ? DEFAULT_IMAGE.output : "image"),
      types: splitList(argv.t).length ? splitList(argv.t) : useDefault ? DEFAULT_IMAGE.types : ["tar"],
      arch: argv.a,
      skipBase: argv.n,
      packages: splitList(argv.p),
      uncompressed: argv.u,
      imageSize: argv["image-size"],
      checksum: argv.checksum,
      offline: argv.offline || process.env.DIB_OFFLINE === "1",
      noTmpfs: argv["no-tmpfs"] || argv["keep-failed"],
      logfile: argv.logfile,
      elementsPath: splitList(argv["elements-path"]).flatMap((p) => p.split(":")),
      imageCache: argv["image-cache"],
      noCache: argv["no-cache"],
      keepFailed: argv["keep-failed"],
      trace: (argv.x ?? 0) > 0,
      json: argv.json,
      hookTimeout: argv["hook-timeout"],
      sourceDateEpoch: epoch === undefined ? DEFAULT_SOURCE_DATE_EPOCH : Number(epoch),
    },
    "invalid build-image options",
  );
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
    // Before the relaunch: unprivileged, unshare would only say "Operation not permitted".
    if (process.getuid?.() !== 0) throw new NotRoot();
    if (!insideBuildNamespace()) {
      process.exitCode = await relaunchInNamespace({
        imageCache: options.imageCache,
        onDisk: options.noTmpfs,
        keepFailed: options.keepFailed,
      });
      return;
    }
    log.addSink(fileSink(resolve(options.logfile ?? `${options.output}.log`)));
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
      .positional("elements", { type: "string", array: true, default: [] })
      .option("expand-dependencies", { type: "boolean", describe: "print the expanded set (default)" })
      .option("env", { alias: "e", type: "boolean", describe: "print eval-able IMAGE_ELEMENT variables" })
      .option("list", { type: "boolean", describe: "list every element found and its folder" })
      .option("elements-path", { type: "string", array: true, describe: "element folders, searched before ELEMENTS_PATH" })
      .example("$0 element-info --expand-dependencies debian-minimal vm", "") as unknown as Argv<ElementInfoArgs>,
  handler: (argv) => {
    const all = discoverElements(elementsPath(argv["elements-path"] ?? []));
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
