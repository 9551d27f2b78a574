import { readFileSync } from "node:fs";
import type { Argv, CommandModule } from "yargs";
import { log } from "../lib/log.ts";
import { loadStoreConfig } from "./config.ts";
import { serveStore } from "./server.ts";

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
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    await running.stop();
  },
};

export const storeCommand: CommandModule = {
  command: "store <command>",
  describe: "the image store: serve it, fetch and list images",
  builder: (y) => y.command(serveCommand as unknown as CommandModule).demandCommand(1, "name a store command"),
  handler: () => {},
};
