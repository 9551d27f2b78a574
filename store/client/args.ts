import { readFileSync } from "node:fs";
import type { Argv } from "yargs";
import { StoreClient, storeCaFromEnv } from "./client.ts";
import { StoreCaUnreadable } from "./errors.ts";
import { PathProblem, UsageError } from "../../lib/errors.ts";
import { inputFile } from "../../lib/user-paths.ts";

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
    .option("store", { type: "string", describe: "URL of the store (or OOO_STORE_URL; default http://127.0.0.1:9292)" })
    .option("token-file", { type: "string", describe: "FILE whose first line is the store token (or OOO_STORE_TOKEN)" })
    .option("ca-file", { type: "string", describe: "FILE: the PEM of the CA to trust for an https store (or OOO_STORE_CA; default: the system's CAs)" }) as Argv<T & StoreArgs>;
}

/** The store's URL as given: http or https, else a usage error naming where it came from. */
export function storeUrl(url: string, from: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {}
  if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:"))
    throw new UsageError(`${from} ${JSON.stringify(url)}: must be an http:// or https:// URL, such as http://127.0.0.1:9292`);
  return url;
}

/** The token: the first line of --token-file (checked before anything is sent), else OOO_STORE_TOKEN. */
export function tokenFrom(file: string | undefined, env: Record<string, string | undefined>, what = "--token-file"): string | undefined {
  if (!file) return env.OOO_STORE_TOKEN;
  const token = readFileSync(inputFile(file, what), "utf8").split("\n")[0]!.trim();
  if (!token) throw new PathProblem(file, "its first line is empty: it should hold the store token", what);
  return token;
}

export function clientFromArgs(argv: StoreArgs, env: Record<string, string | undefined> = process.env): StoreClient {
  const token = tokenFrom(argv["token-file"], env);
  const caFile = argv["ca-file"];
  let ca: string | undefined;
  if (caFile)
    try {
      ca = readFileSync(caFile, "utf8");
    } catch {
      throw new StoreCaUnreadable(caFile, "--ca-file");
    }
  const url = argv.store !== undefined ? storeUrl(argv.store, "--store") : env.OOO_STORE_URL ? storeUrl(env.OOO_STORE_URL, "OOO_STORE_URL") : "http://127.0.0.1:9292";
  return new StoreClient({ url, token, ca: ca ?? storeCaFromEnv(env), source: "--store or OOO_STORE_URL" });
}
