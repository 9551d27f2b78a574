import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Argv, CommandModule } from "yargs";
import { UsageError } from "../lib/errors.ts";
import { IMAGE_REF_FORMS } from "../wire/image-ref.ts";
import { log, table } from "../lib/log.ts";
import { clientFromArgs, type StoreArgs, withStoreArgs } from "./client/args.ts";
import { loadStoreConfig } from "./config.ts";
import { createBackend } from "./backends/index.ts";
import { fetchImage } from "./client/fetch.ts";
import { collectGarbage } from "./gc.ts";
import { glanceTime } from "./image.ts";
import { imageRef, resolveImage } from "./client/resolve.ts";
import { serveStore } from "./server.ts";
import { Store } from "./store.ts";

/** `ooo store …`: run the image store and talk to one. */

const tokensIn = (file: string | undefined) =>
  file
    ? readFileSync(file, "utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#"))
    : [];

type ServeArgs = {
  config?: string;
  dir?: string;
  listen?: string;
  "write-token-file"?: string;
  "read-token-file"?: string;
  "allow-empty-uploads"?: boolean;
};

const serveCommand: CommandModule<object, ServeArgs> = {
  command: "serve",
  describe: "serve the image store (Glance v2 API) until stopped",
  builder: (y) =>
    y
      .option("config", { type: "string", describe: "YAML config file (store/config.ts documents every key)" })
      .option("dir", { type: "string", describe: "store directory: records, lock, dir-backend blobs" })
      .option("listen", { type: "string", describe: "HOST:PORT (default 127.0.0.1:9292)" })
      .option("write-token-file", { type: "string", describe: "file with write tokens, one a line (also OOO_STORE_WRITE_TOKEN)" })
      .option("read-token-file", { type: "string", describe: "file with read-only tokens, one a line (also OOO_STORE_READ_TOKEN)" })
      .option("allow-empty-uploads", { type: "boolean", describe: "accept 0-byte image data without x-ooo-allow-empty" })
      .example("OOO_STORE_WRITE_TOKEN=… $0 store serve --dir /var/lib/ooo/store", "") as unknown as Argv<ServeArgs>,
  handler: async (argv) => {
    const config = loadStoreConfig({
      file: argv.config,
      flags: {
        dir: argv.dir,
        listen: argv.listen,
        writeTokens: tokensIn(argv["write-token-file"]),
        readTokens: tokensIn(argv["read-token-file"]),
        allowEmptyUploads: argv["allow-empty-uploads"],
      },
    });
    const running = await serveStore(config);
    log.info(`ooo store: ${config.dir} (${config.backend.type} backend) at ${running.url}`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once("SIGINT", () => resolve("SIGINT"));
      process.once("SIGTERM", () => resolve("SIGTERM"));
    });
    log.info(`ooo store: stopping on ${signal}`);
    await running.stop();
  },
};

type FetchArgs = StoreArgs & { image: string; o?: string; seed?: string[]; "source-date-epoch"?: number; json?: boolean };

const mib = (n: number) => (n / 2 ** 20).toFixed(1);

const fetchCommand: CommandModule<object, FetchArgs> = {
  command: "fetch <image>",
  describe: "fetch an image's data, reusing chunks of local seeds",
  builder: (y) =>
    withStoreArgs(y)
      .positional("image", { type: "string", demandOption: true, describe: IMAGE_REF_FORMS })
      .option("o", { type: "string", describe: "output file (default: NAME.tar here)" })
      .option("seed", { type: "string", array: true, describe: "older image tar, any file, a block device or a directory tree" })
      .option("source-date-epoch", { type: "number", describe: "mtime clamp for directory seeds (default: the image manifest's)" })
      .option("json", { type: "boolean", describe: "print the report as JSON on stdout" })
      .example("$0 store fetch debian-minimal@stable --seed /dev/vda2 -o /tmp/new.tar", "")
      .example("$0 store fetch debian-minimal --seed / -o /mnt/new.tar", "seed from the running root") as unknown as Argv<FetchArgs>,
  handler: async (argv) => {
    const ref = imageRef(argv.image);
    const client = clientFromArgs(argv);
    const image = await resolveImage(client, ref);
    const out = resolve(argv.o ?? `${image.name ?? image.id}.tar`);
    let sourceDateEpoch = argv["source-date-epoch"] ?? (process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : undefined);
    if (sourceDateEpoch === undefined && image.ooo_manifest) sourceDateEpoch = (await client.getManifest(image.id)).sourceDateEpoch;
    const t0 = performance.now();
    // A digest the user wrote is what the data must be, whatever the store's record says.
    const digest = ref.form === "digest" || ref.form === "name-digest" ? ref.digest : undefined;
    const report = await fetchImage({ client, image, out, digest, seeds: argv.seed ?? [], sourceDateEpoch });
    const seconds = (performance.now() - t0) / 1000;
    const pct = (n: number) => (report.size ? ((100 * n) / report.size).toFixed(2) : "0");
    process.stderr.write(
      "\n" +
        table(
          ["", "MiB", "% of image", "chunks"],
          [
            ["image", Number(mib(report.size)), 100, report.chunks.total],
            ["from seeds", Number(mib(report.seeded)), Number(pct(report.seeded)), report.chunks.seeded],
            ["fetched", Number(mib(report.fetched)), Number(pct(report.fetched)), report.chunks.fetched],
            ["chunk index", Number(mib(report.indexBytes)), Number(pct(report.indexBytes)), 0],
          ],
        ) +
        `\n\nwrote ${out} (${report.digest}) in ${seconds.toFixed(1)}s, ${report.requests} request${report.requests === 1 ? "" : "s"}\n`,
    );
    if (argv.json) process.stdout.write(JSON.stringify({ ...report, out, seconds }) + "\n");
  },
};

type ListArgs = StoreArgs & { name?: string; tag?: string[]; all?: boolean; json?: boolean };

const listCommand: CommandModule<object, ListArgs> = {
  command: "list [name]",
  describe: "list images (newest first)",
  builder: (y) =>
    withStoreArgs(y)
      .positional("name", { type: "string", describe: "only images of this name" })
      .option("tag", { type: "string", array: true, describe: "only images with these tags" })
      .option("all", { type: "boolean", describe: "every status, not only active" })
      .option("json", { type: "boolean", describe: "print JSON on stdout" }) as unknown as Argv<ListArgs>,
  handler: async (argv) => {
    const client = clientFromArgs(argv);
    const images = [];
    for await (const image of client.listImages({ name: argv.name, tag: argv.tag, status: argv.all ? undefined : "active", sort_key: "created_at", sort_dir: "desc" }))
      images.push(image);
    if (argv.json) return void process.stdout.write(JSON.stringify(images, null, 2) + "\n");
    process.stdout.write(
      table(
        ["name", "version", "status", "tags", "MiB", "digest", "created", "id"],
        images.map((i) => [
          i.name ?? "",
          i.ooo_version ?? "",
          i.status,
          i.tags.join(","),
          i.size ? Number(mib(i.size)) : 0,
          (i.ooo_digest ?? "").slice(0, 19),
          i.created_at ? glanceTime(i.created_at) : "",
          i.id,
        ]),
      ) + "\n",
    );
  },
};

const showCommand: CommandModule<object, StoreArgs & { image: string }> = {
  command: "show <image>",
  describe: "show an image record (JSON)",
  builder: (y) =>
    withStoreArgs(y).positional("image", { type: "string", demandOption: true, describe: IMAGE_REF_FORMS }) as unknown as Argv<StoreArgs & { image: string }>,
  handler: async (argv) => {
    const ref = imageRef(argv.image);
    const image = await resolveImage(clientFromArgs(argv), ref);
    process.stdout.write(JSON.stringify(image, null, 2) + "\n");
  },
};

type GcArgs = { config?: string; dir?: string; "dry-run"?: boolean };

const gcCommand: CommandModule<object, GcArgs> = {
  command: "gc",
  describe: "delete blobs no image refers to (stop the server first)",
  builder: (y) =>
    y
      .option("config", { type: "string", describe: "the server's YAML config" })
      .option("dir", { type: "string", describe: "store directory" })
      .option("dry-run", { type: "boolean", describe: "only say what would be deleted" }) as unknown as Argv<GcArgs>,
  handler: async (argv) => {
    // No tokens: gc opens the store directly, as its owner (and takes its lock).
    const config = loadStoreConfig({ file: argv.config, flags: { dir: argv.dir }, tokensOptional: true });
    const store = await Store.open({ dir: config.dir, backend: await createBackend(config) });
    try {
      const r = await collectGarbage(store, { dryRun: argv["dry-run"] });
      process.stderr.write(
        `${argv["dry-run"] ? "would delete" : "deleted"} ${r.deleted} blobs (${mib(r.bytesFreed)} MiB); kept ${r.kept} that images refer to\n`,
      );
    } finally {
      await store.close();
    }
  },
};

export const storeCommand: CommandModule = {
  command: "store <command>",
  describe: "the image store: serve it, fetch and list images",
  builder: (y) =>
    y
      .command(serveCommand as unknown as CommandModule)
      .command(fetchCommand as unknown as CommandModule)
      .command(listCommand as unknown as CommandModule)
      .command(showCommand as unknown as CommandModule)
      .command(gcCommand as unknown as CommandModule)
      .demandCommand(1, "name a store command"),
  handler: () => {
    throw new UsageError("name a store command: serve, fetch, list, show, gc");
  },
};
