import { readFileSync } from "node:fs";
import type { Argv } from "yargs";
import { StoreClient } from "./client.ts";

/**
 * How commands that talk to a store find it: --store URL (OOO_STORE_URL,
 * default Glance's http://127.0.0.1:9292) and a token from --token-file or
 * OOO_STORE_TOKEN — never a flag, so it stays out of `ps` and shell history.
 */
export interface StoreArgs {
  store?: string;
  "token-file"?: string;
}

export function withStoreArgs<T>(y: Argv<T>): Argv<T & StoreArgs> {
  return y
    .option("store", { type: "string", describe: "store URL (OOO_STORE_URL; default http://127.0.0.1:9292)" })
    .option("token-file", { type: "string", describe: "file holding the store token (or OOO_STORE_TOKEN)" }) as Argv<T & StoreArgs>;
}

export function clientFromArgs(argv: StoreArgs, env: Record<string, string | undefined> = process.env): StoreClient {
  const token = argv["token-file"] ? readFileSync(argv["token-file"], "utf8").split("\n")[0]!.trim() : env.OOO_STORE_TOKEN;
  return new StoreClient({ url: argv.store ?? env.OOO_STORE_URL ?? "http://127.0.0.1:9292", token });
}
