import type { Argv, CommandModule } from "yargs";
import { DEFAULT_IMAGE } from "../builder/defaults.ts";
import { log, table } from "../lib/log.ts";
import { clientFromArgs, type StoreArgs, withStoreArgs } from "../store/client-args.ts";
import { promote } from "./promote.ts";
import { publish } from "./publish.ts";

/** `ooo publish` and `ooo promote`: what CI runs after a build and after its boot test. */

const mib = (n: number) => Number((n / 2 ** 20).toFixed(1));

type PublishArgs = StoreArgs & { output?: string; "image-version"?: string; tag?: string[]; json?: boolean };

export const publishCommand: CommandModule<object, PublishArgs> = {
  command: "publish [output]",
  describe: "publish a build (its -o path) to the image store",
  builder: (y) =>
    withStoreArgs(y)
      .positional("output", { type: "string", describe: `the build's -o path (default ${DEFAULT_IMAGE.output})` })
      .option("image-version", { type: "string", describe: "version of the image (default: the next number for its name)" })
      .option("tag", { type: "string", array: true, describe: "tags to add" })
      .option("json", { type: "boolean", describe: "print the report as JSON on stdout" })
      .example("$0 publish out/node --store http://store:9292 --token-file ci.token", "") as unknown as Argv<PublishArgs>,
  handler: async (argv) => {
    const output = argv.output ?? DEFAULT_IMAGE.output;
    const r = await log.step(`publish ${output}`, () =>
      publish({ client: clientFromArgs(argv), output, version: argv["image-version"], tags: argv.tag }),
    );
    process.stderr.write(
      "\n" +
        table(
          ["image", "version", "id", "artifacts MiB", "sent MiB", "chunks sent"],
          [[r.image.name ?? "", r.version, r.image.id, mib(r.totalBytes), mib(r.sentBytes), `${r.chunks.sent} of ${r.chunks.total}`]],
        ) +
        `\n${r.alreadyPublished ? "already published: nothing uploaded" : `published ${r.digest}`}\n`,
    );
    if (argv.json) process.stdout.write(JSON.stringify({ ...r, image: r.image }) + "\n");
  },
};

type PromoteArgs = StoreArgs & { name: string; ref?: string; tag: string };

export const promoteCommand: CommandModule<object, PromoteArgs> = {
  command: "promote <name> [ref]",
  describe: "move a tag onto an image of NAME (REF: version, sha256:… or id; default the newest)",
  builder: (y) =>
    withStoreArgs(y)
      .positional("name", { type: "string", demandOption: true })
      .positional("ref", { type: "string", describe: "version, digest or image id" })
      .option("tag", { type: "string", demandOption: true, describe: "the tag to move, e.g. stable" })
      .example("$0 promote debian-minimal 7 --tag stable", "") as unknown as Argv<PromoteArgs>,
  handler: async (argv) => {
    const r = await promote({ client: clientFromArgs(argv), name: argv.name, ref: argv.ref === undefined ? undefined : String(argv.ref), tag: argv.tag });
    process.stderr.write(
      `${argv.tag} → ${r.image.name} ${r.image.ooo_version ?? ""} (${r.image.id})` +
        (r.removedFrom.length ? `; taken off ${r.removedFrom.map((i) => `${i.ooo_version ?? i.id}`).join(", ")}` : "") +
        "\n",
    );
  },
};
