import type { Argv, CommandModule } from "yargs";
import { DEFAULT_IMAGE } from "../builder/defaults.ts";
import { UsageError } from "../lib/errors.ts";
import { log, table } from "../lib/log.ts";
import { IMAGE_REF_FORMS, LABEL_FORM, LABEL_RE } from "../wire/image-ref.ts";
import { inputFile } from "../lib/user-paths.ts";
import { whileInterruptible } from "../lib/interrupt.ts";
import { withExamples } from "../lib/help.ts";
import type { GlanceImage } from "../store/client/image.ts";
import { clientFromArgs, type StoreArgs, withStoreArgs } from "../store/client/args.ts";
import { promote, promoteTarget } from "./promote.ts";
import { attachProgressFile, progressFileOption } from "../lib/progress-file.ts";
import { publish, type PublishReport } from "./publish.ts";
import { loadSigningKey, PASSWORD_ENV } from "./signing.ts";
import { BOOT_PATHS, type BootPath } from "./boot.ts";
import { testImage } from "./test-image.ts";

/**
 * What CI runs: `ooo test-image` after a build, `ooo publish` to put it in
 * the image store, `ooo promote` once its boot test passed.
 */

type TestImageArgs = { image: string; boot: string; accel: string; timeout: number; json?: boolean };

export const testImageCommand: CommandModule<object, TestImageArgs> = {
  command: "test-image <image>",
  describe: "boot a built image in qemu and check it is a sound golden node",
  builder: (y) =>
    withExamples(
      y
        .positional("image", { type: "string", demandOption: true, describe: "the build's -o path, its .manifest.json, or its .raw/.qcow2 file" })
        .option("boot", {
          type: "string",
          default: "all",
          describe: "which boots, comma-separated: direct (its kernel and initrd), bios (the disk's GRUB under SeaBIOS), uefi (under OVMF); disk = bios,uefi; all (the default)",
        })
        .option("accel", { choices: ["auto", "tcg", "kvm"], default: "auto", describe: "qemu acceleration: tcg, kvm, or auto (the default: KVM if a probe boot works)" })
        .option("timeout", { type: "number", default: 120, describe: "SECONDS to wait for the node's ready line (default 120)" })
        .option("json", { type: "boolean", describe: "print the result as JSON on stdout" }),
      [
        ["$0 test-image out/default", "boot all three ways and check each"],
        ["$0 test-image out/default --boot uefi", "only through GRUB under UEFI"],
      ],
    ) as unknown as Argv<TestImageArgs>,
  handler: async (argv) => {
    if (!(argv.timeout > 0)) throw new UsageError(`--timeout must be a number of seconds above 0`);
    const result = await testImage({
      image: argv.image,
      modes: bootPaths(argv.boot),
      accel: argv.accel as "auto" | "tcg" | "kvm",
      timeoutSeconds: argv.timeout,
    });
    process.stderr.write(
      "\n" +
        table(
          ["boot", "power-on to ready (s)", "slot", "root ro", "state", "state paths", "console log"],
          result.boots.map((b) => [
            b.mode,
            b.seconds,
            b.report.slot,
            String(b.report.rootReadOnly),
            `${b.report.state.kind}${b.report.state.writable ? " rw" : " ro"}`,
            b.report.statePaths.length,
            b.consoleLog,
          ]),
        ) +
        `\n\n${result.digest}: all checks passed\n`,
    );
    if (argv.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  },
};

/** --boot's words, in the order given, each once. */
function bootPaths(text: string): BootPath[] {
  const words = text.split(",").map((w) => w.trim()).filter(Boolean);
  const paths = words.flatMap((w): readonly BootPath[] => {
    if (w === "all") return BOOT_PATHS;
    if (w === "disk") return ["bios", "uefi"];
    if ((BOOT_PATHS as readonly string[]).includes(w)) return [w as BootPath];
    throw new UsageError(`--boot: unknown boot '${w}' (direct, bios, uefi, disk or all)`);
  });
  if (!paths.length) throw new UsageError("--boot: name at least one boot (direct, bios, uefi, disk or all)");
  return [...new Set(paths)];
}

const mib = (n: number) => Number((n / 2 ** 20).toFixed(1));
/** The table's "chunks sent": a first publish sends the tar whole, an image already there sends nothing. */
const sentChunks = (r: PublishReport) =>
  r.mode === "whole" ? "tar sent whole" : r.mode === "none" ? "none" : `${r.chunks.sent} of ${r.chunks.total}`;

/** A tag or version that references could not name is refused before anything is sent (a tag the store refused after the upload left an untagged image). */
function checkLabels(flag: string, labels: (string | undefined)[]) {
  for (const l of labels)
    if (l !== undefined && !LABEL_RE.test(l)) throw new UsageError(`${flag} ${JSON.stringify(l)}: must be ${LABEL_FORM} (references name it as NAME@${flag === "--image-version" ? "VERSION" : "TAG"})`);
}

type PublishArgs = StoreArgs & { output?: string; "image-version"?: string; tag?: string[]; sign?: string; json?: boolean; "progress-file"?: string };

export const publishCommand: CommandModule<object, PublishArgs> = {
  command: "publish [output]",
  describe: "publish a build (its -o path) to the image store",
  builder: (y) =>
    withExamples(
      withStoreArgs(y)
        .positional("output", { type: "string", describe: `the build's -o path (default ${DEFAULT_IMAGE.output})` })
        .option("image-version", { type: "string", describe: "VERSION of the image (default: the next number for its name)" })
        .option("tag", { type: "string", array: true, nargs: 1, describe: "TAG to add (may repeat)" })
        .option("sign", { type: "string", describe: `FILE: sign the manifest with this minisign secret key, NAME.key (its password: ${PASSWORD_ENV} or the terminal)` })
        .option("json", { type: "boolean", describe: "print the report as JSON on stdout" })
        .option("progress-file", progressFileOption),
      [
        ["$0 publish out/node --store http://store:9292 --token-file ci.token"],
        ["$0 publish out/node --sign ci.key --token-file ci.token", "signed: stacks that trust ci.pub deploy it"],
      ],
    ) as unknown as Argv<PublishArgs>,
  handler: async (argv) => {
    checkLabels("--tag", argv.tag ?? []);
    checkLabels("--image-version", [argv["image-version"]]);
    const output = argv.output ?? DEFAULT_IMAGE.output;
    const extension = /\.(manifest\.json|tar|raw|qcow2)$/.exec(output)?.[0];
    inputFile(
      `${output}.manifest.json`,
      `${argv.output === undefined ? "the default build's" : "the build's"} manifest`,
      extension ? `Give the -o path without ${extension}: ooo publish ${output.slice(0, -extension.length)}` : "Publish the -o path of a finished build (ooo build-image -o OUTPUT …).",
    );
    const client = clientFromArgs(argv);
    if (argv.sign !== undefined) inputFile(argv.sign, "--sign");
    const sign = argv.sign === undefined ? undefined : await loadSigningKey(argv.sign);
    attachProgressFile(argv["progress-file"]);
    let record: GlanceImage | undefined;
    const r = await whileInterruptible(
      () =>
        record
          ? `image ${record.id} (${record.name} version ${record.ooo_version}) is left in the store ${record.status === "active" ? "active, perhaps without all its tags or its signature" : `${record.status}, without all its data`}; ` +
            "run the same ooo publish again: it finishes this image (publishing is idempotent by digest)"
          : "nothing was created in the store",
      () => log.step(`publish ${output}`, () => publish({ client, output, version: argv["image-version"], tags: argv.tag, sign, onRecord: (i) => (record = i) })),
    );
    process.stderr.write(
      "\n" +
        table(
          ["image", "version", "id", "artifacts MiB", "sent MiB", "chunks sent"],
          [[r.image.name ?? "", r.version, r.image.id, mib(r.totalBytes), mib(r.sentBytes), sentChunks(r)]],
        ) +
        `\n${r.alreadyPublished ? "already published: nothing uploaded" : `published ${r.digest}`}` +
        (r.signedBy ? `; manifest signed by key ID ${r.signedBy}` : "") +
        "\n",
    );
    if (argv.json) process.stdout.write(JSON.stringify({ ...r, image: r.image }) + "\n");
  },
};

type PromoteArgs = StoreArgs & { image: string; label?: string; tag: string };

export const promoteCommand: CommandModule<object, PromoteArgs> = {
  // Not "version": yargs keeps that name for --version, and a positional of that name reads as false.
  command: "promote <image> [label]",
  describe: "move a tag onto an image, off the other images of its name",
  builder: (y) =>
    withExamples(
      withStoreArgs(y)
        .positional("image", { type: "string", demandOption: true, describe: `the image: ${IMAGE_REF_FORMS}` })
        .positional("label", { type: "string", describe: "the older form: promote NAME X is promote NAME@X (an image ID for X must be named NAME)" })
        .option("tag", { type: "string", demandOption: true, describe: "TAG to move, e.g. stable (required)" }),
      [["$0 promote debian-minimal@7 --tag stable"], ["$0 promote debian-minimal 7 --tag stable", "the same, the older way"]],
    ) as unknown as Argv<PromoteArgs>,
  handler: async (argv) => {
    checkLabels("--tag", [argv.tag]);
    const target = promoteTarget(String(argv.image), argv.label === undefined ? undefined : String(argv.label));
    const r = await promote({ client: clientFromArgs(argv), image: target.ref, name: target.name, tag: argv.tag });
    process.stderr.write(
      `${argv.tag} → ${r.image.name} ${r.image.ooo_version ?? ""} (${r.image.id})` +
        (r.removedFrom.length ? `; taken off ${r.removedFrom.map((i) => `${i.ooo_version ?? i.id}`).join(", ")}` : "") +
        "\n",
    );
  },
};
