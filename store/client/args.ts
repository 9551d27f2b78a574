import { readFileSync } from "node:fs";
import type { Argv } from "yargs";
import { StoreClient, storeCaFromEnv } from "./client.ts";
import { StoreCaUnreadable } from "./errors.ts";

/**
 * How commands that talk to a store find it: --store URL (OOO_STORE_URL,
 * default Glance's http://127.0.0.1:9292) and a token from --token-file or
 * OOO_STORE_TOKEN — never a flag, so it stays out of `ps` and shell history;
 * for https, the CA to trust from --ca-file or OOO_STORE_CA.
 */
export interface StoreArgs {
  store?: string;
  "token-file"?: string;
  "ca-file"?: string;
}

export function withStoreArgs<T>(y: Argv<T>): Argv<T & StoreArgs> {
  return y
    .option("store", { type: "string", describe: "store URL (OOO_STORE_URL; default http://127.0.0.1:9292)" })
    .option("token-file", { type: "string", describe: "file holding the store token (or OOO_STORE_TOKEN)" })
    .option("ca-file", { type: "string", describe: "PEM of the CA to trust for an https store (or OOO_STORE_CA; default: the system's CAs)" }) as Argv<T & StoreArgs>;
}

export function clientFromArgs(argv: StoreArgs, env: Record<string, string | undefined> = process.env): StoreClient {
  const token = argv["token-file"] ? readFileSync(argv["token-file"], "utf8").split("\n")[0]!.trim() : env.OOO_STORE_TOKEN;
  const caFile = argv["ca-file"];
  let ca: string | undefined;
  if (caFile)
    try {
      ca = readFileSync(caFile, "utf8");
    } catch {
      throw new StoreCaUnreadable(caFile, "--ca-file");
    }
  return new StoreClient({ url: argv.store ?? env.OOO_STORE_URL ?? "http://127.0.0.1:9292", token, ca: ca ?? storeCaFromEnv(env) });
}
