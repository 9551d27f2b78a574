import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { publishAtomically } from "../lib/atomic.ts";
import { trustedKeys } from "../lib/image-trust.ts";
import { parseSignature, signerId } from "../lib/minisign.ts";
import type { Argv, CommandModule } from "yargs";
import { UsageError } from "../lib/errors.ts";
import { withExamples } from "../lib/help.ts";
import { firstMissing, folderToWrite, inputFile, inputPath, makeFolderFor, outputFiles } from "../lib/user-paths.ts";
import { IMAGE_REF_FORMS } from "../wire/image-ref.ts";
import { log, table } from "../lib/log.ts";
import { clientFromArgs, type StoreArgs, withStoreArgs } from "./client/args.ts";
import type { StoreClient } from "./client/client.ts";
import type { GlanceImage } from "./client/image.ts";
import { checkImage, imageLabel, signedManifest } from "./client/signed.ts";
import { loadStoreConfig } from "./config.ts";
import { createBackend } from "./backends/index.ts";
import { fetchImage } from "./client/fetch.ts";
import { collectGarbage } from "./gc.ts";
import { glanceTime } from "./image.ts";
import { imageRef, resolveImage } from "./client/resolve.ts";
import { serveStore } from "./server.ts";
import { Store } from "./store.ts";

/** `ooo store …`: run the image store and talk to one. */

const tokensIn = (file: string | undefined, flag: string) =>
  file
    ? readFileSync(inputFile(file, flag), "utf8")
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
  "tls-cert"?: string;
  "tls-key"?: string;
  "plain-http"?: boolean;
};

const serveCommand: CommandModule<object, ServeArgs> = {
  command: "serve",
  describe: "serve the image store (Glance v2 API) until stopped",
  builder: (y) =>
    withExamples(
      y
        .option("config", { type: "string", describe: "FILE: YAML settings (store/config.ts documents every key)" })
        .option("dir", { type: "string", describe: "DIR: the store's folder (records, lock, the dir backend's blobs); made when missing" })
        .option("listen", { type: "string", describe: "HOST:PORT to listen on (default 127.0.0.1:9292)" })
        .option("write-token-file", { type: "string", describe: "FILE with write tokens, one a line (also OOO_STORE_WRITE_TOKEN)" })
        .option("read-token-file", { type: "string", describe: "FILE with read-only tokens, one a line (also OOO_STORE_READ_TOKEN)" })
        .option("allow-empty-uploads", { type: "boolean", describe: "accept 0-byte image data without x-ooo-allow-empty" })
        .option("tls-cert", { type: "string", describe: "FILE: serve https with this PEM certificate (chain)" })
        .option("tls-key", { type: "string", describe: "FILE: and this PEM private key" })
        .option("plain-http", { type: "boolean", describe: "allow plain http on an address that is not loopback" }),
      [["OOO_STORE_WRITE_TOKEN=… $0 store serve --dir /var/lib/ooo/store"]],
    ) as unknown as Argv<ServeArgs>,
  handler: async (argv) => {
    const config = loadStoreConfig({
      file: argv.config,
      flags: {
        dir: argv.dir,
        listen: argv.listen,
        writeTokens: tokensIn(argv["write-token-file"], "--write-token-file"),
        readTokens: tokensIn(argv["read-token-file"], "--read-token-file"),
        allowEmptyUploads: argv["allow-empty-uploads"],
        tls: { cert: argv["tls-cert"], key: argv["tls-key"] },
        plainHttp: argv["plain-http"],
      },
    });
    folderToWrite(config.dir, argv.dir ? "--dir" : "the config's dir");
    if (config.tls) {
      inputFile(config.tls.cert, argv["tls-cert"] ? "--tls-cert" : "the config's tls.cert");
      inputFile(config.tls.key, argv["tls-key"] ? "--tls-key" : "the config's tls.key");
    }
    // A store that could not start (the address is taken) leaves no new, empty store folder behind.
    const made = firstMissing(config.dir);
    const running = await serveStore(config).catch((e: unknown) => {
      if (made) rmSync(made, { recursive: true, force: true });
      throw e;
    });
    log.info(`ooo store: ${config.dir} (${config.backend.type} backend) at ${running.url}`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once("SIGINT", () => resolve("SIGINT"));
      process.once("SIGTERM", () => resolve("SIGTERM"));
    });
    log.info(`ooo store: stopping on ${signal}`);
    await running.stop();
  },
};

type FetchArgs = StoreArgs & { image: string; o?: string; seed?: string[]; manifest?: boolean; "source-date-epoch"?: number; json?: boolean; force?: boolean };

const mib = (n: number) => (n / 2 ** 20).toFixed(1);

const fetchCommand: CommandModule<object, FetchArgs> = {
  command: "fetch <image>",
  describe: "fetch an image's data, reusing chunks of local seeds",
  builder: (y) =>
    withStoreArgs(y)
      .positional("image", { type: "string", demandOption: true, describe: `the image: ${IMAGE_REF_FORMS}` })
      .option("o", { type: "string", describe: "FILE: where to write it (default: NAME.tar here); its folder is made when missing" })
      .option("force", { type: "boolean", describe: "replace FILE if it exists (only once the new one is complete)" })
      .option("seed", { type: "string", array: true, nargs: 1, describe: "an older image tar, any file, a block device or a directory tree to take chunks from (may repeat)" })
      .option("manifest", { type: "boolean", describe: "fetch the build manifest (and OUT.minisig, when signed) instead of the data" })
      .option("source-date-epoch", { type: "number", describe: "SECONDS: the mtime clamp for directory seeds (default: the image manifest's)" })
      .option("json", { type: "boolean", describe: "print the report as JSON on stdout" })
      .example("$0 store fetch debian-minimal@stable --seed /dev/vda2 -o /tmp/new.tar", "")
      .example("# seed from the running root", "")
      .example("$0 store fetch debian-minimal --seed / -o /mnt/new.tar", "")
      .example("# the manifest; then: minisign -Vm kv.json -p ci.pub", "")
      .example("$0 store fetch kv@live --manifest -o kv.json", "") as unknown as Argv<FetchArgs>,
  handler: async (argv) => {
    // Everything local first: a typo costs no download.
    const ref = imageRef(argv.image);
    const seeds = (argv.seed ?? []).map((s) => inputPath(s, "--seed"));
    const outputs = (file: string) => (argv.manifest ? [file, `${file}.minisig`] : [file]);
    if (argv.o !== undefined) outputFiles(outputs(argv.o), "-o", { force: argv.force });
    const client = clientFromArgs(argv);
    const image = await resolveImage(client, ref);
    const given = argv.o ?? `${image.name ?? image.id}.${argv.manifest ? "manifest.json" : "tar"}`;
    const out = outputFiles(outputs(given), "-o", { force: argv.force })[0]!;
    if (argv.manifest) return fetchManifest(client, image, out);
    let sourceDateEpoch = argv["source-date-epoch"] ?? (process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : undefined);
    if (sourceDateEpoch !== undefined && !(Number.isInteger(sourceDateEpoch) && sourceDateEpoch >= 0))
      throw new UsageError(`${argv["source-date-epoch"] !== undefined ? "--source-date-epoch" : "SOURCE_DATE_EPOCH"} must be a whole number of seconds since 1970`);
    if (sourceDateEpoch === undefined && image.ooo_manifest) sourceDateEpoch = (await client.getManifest(image.id)).sourceDateEpoch;
    const t0 = performance.now();
    // A digest the user wrote is what the data must be, whatever the store's record says.
    const digest = ref.form === "digest" || ref.form === "name-digest" ? ref.digest : undefined;
    const unmake = makeFolderFor(out);
    const report = await fetchImage({ client, image, out, digest, seeds, sourceDateEpoch }).catch((e: unknown) => {
      unmake();
      throw e;
    });
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

/** The manifest exactly as stored, and its signature beside it as minisign looks for it (FILE.minisig). */
async function fetchManifest(client: StoreClient, image: GlanceImage, out: string) {
  const signed = await signedManifest(client, image);
  makeFolderFor(out);
  await publishAtomically(out, async (p) => writeFileSync(p, signed.text));
  if (signed.signature !== undefined) await publishAtomically(`${out}.minisig`, async (p) => writeFileSync(p, signed.signature!));
  else rmSync(`${out}.minisig`, { force: true });
  process.stderr.write(
    signed.signature !== undefined
      ? `wrote ${out} and ${out}.minisig (key ID ${signerId(parseSignature(signed.signature))}): minisign -Vm ${out} -p KEY.pub checks it\n`
      : `wrote ${out}; the manifest is not signed\n`,
  );
}

type VerifyArgs = StoreArgs & { image: string; key: string[] };

const verifyCommand: CommandModule<object, VerifyArgs> = {
  command: "verify <image>",
  describe: "check that an image's manifest is signed by one of these keys and names the image's data",
  builder: (y) =>
    withStoreArgs(y)
      .positional("image", { type: "string", demandOption: true, describe: `the image: ${IMAGE_REF_FORMS}` })
      .option("key", { type: "string", array: true, nargs: 1, demandOption: true, describe: "FILE: a trusted public key, NAME.pub (required; may repeat)" })
      .example("$0 store verify kv@live --key ci.pub", "") as unknown as Argv<VerifyArgs>,
  handler: async (argv) => {
    const keys = trustedKeys(argv.key.map((f) => readFileSync(inputFile(f, "--key"), "utf8")), argv.key);
    const client = clientFromArgs(argv);
    const image = await resolveImage(client, imageRef(argv.image));
    const signed = await signedManifest(client, image);
    const key = checkImage(image, signed, keys);
    process.stderr.write(
      `${imageLabel(image)}: manifest signed by ${key.name} (key ID ${key.key.id}); it names root ${signed.manifest.digest} and ${signed.manifest.artifacts.length} artifacts by sha256\n`,
    );
  },
};

type ListArgs = StoreArgs & { name?: string; tag?: string[]; all?: boolean; json?: boolean };

const listCommand: CommandModule<object, ListArgs> = {
  command: "list [name]",
  describe: "list images (newest first)",
  builder: (y) =>
    withStoreArgs(y)
      .positional("name", { type: "string", describe: "only images of this NAME" })
      .option("tag", { type: "string", array: true, nargs: 1, describe: "only images with this TAG (may repeat: all of them)" })
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
    withStoreArgs(y).positional("image", { type: "string", demandOption: true, describe: `the image: ${IMAGE_REF_FORMS}` }) as unknown as Argv<StoreArgs & { image: string }>,
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
      .option("config", { type: "string", describe: "FILE: the server's YAML settings" })
      .option("dir", { type: "string", describe: "DIR: the store's folder (it must be one: gc makes none)" })
      .option("dry-run", { type: "boolean", describe: "only say what would be deleted" }) as unknown as Argv<GcArgs>,
  handler: async (argv) => {
    // No tokens: gc opens the store directly, as its owner (and takes its lock).
    const config = loadStoreConfig({ file: argv.config, flags: { dir: argv.dir }, tokensOptional: true });
    Store.requireExisting(config.dir);
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
      .command(verifyCommand as unknown as CommandModule)
      .command(listCommand as unknown as CommandModule)
      .command(showCommand as unknown as CommandModule)
      .command(gcCommand as unknown as CommandModule)
      .demandCommand(1, "name a store command"),
  handler: () => {
    throw new UsageError("name a store command: serve, fetch, verify, list, show, gc");
  },
};
