import { z } from "zod";
import { parseWith, parseYamlFile } from "../lib/validate.ts";
import { InvalidInput, type Problem, UsageError } from "../lib/errors.ts";
import { isLoopback } from "../lib/tls.ts";
import { inputFile } from "../lib/user-paths.ts";
import { TIB } from "./store.ts";

/**
 * `ooo store serve`'s configuration: a YAML file (--config), then flags,
 * then the environment for secrets (OOO_STORE_WRITE_TOKEN,
 * OOO_STORE_READ_TOKEN — comma-separated — and OOO_SWIFT_KEY), so tokens
 * need not sit in a file or on a command line.
 */
const Token = z.string().min(16, "a token has at least 16 characters");

export const DirBackendConfig = z.strictObject({
  type: z.literal("dir"),
  path: z.string().optional().describe("Folder for blobs (default: DIR/blobs)"),
});

export const SwiftBackendConfig = z.strictObject({
  type: z.literal("swift"),
  authUrl: z.url().describe("Swift's v1 auth endpoint (tempauth/swauth), e.g. http://127.0.0.1:8080/auth/v1.0"),
  user: z.string().min(1).describe("account:user"),
  key: z.string().min(1).optional().describe("The user's key (or OOO_SWIFT_KEY)"),
  container: z.string().min(1).default("ooo-images").describe("Container for blobs; created if missing"),
  segmentBytes: z
    .number()
    .int()
    .positive()
    .default(64 << 20)
    .describe("Blobs larger than this go up as static large objects made of segments this big"),
});

// Strict: a misspelt key (lisen:) is reported, not ignored in favour of the default.
export const StoreConfig = z.strictObject({
  version: z.literal(1).default(1).describe("Config format version"),
  dir: z.string().min(1).describe("Records, the lock and (dir backend) blobs"),
  listen: z
    .string()
    .regex(/^[^:]+:\d+$/, "must be HOST:PORT, such as 127.0.0.1:9292")
    .refine((l) => Number(l.slice(l.lastIndexOf(":") + 1)) <= 65535, "the port must be at most 65535")
    .default("127.0.0.1:9292")
    .describe("Address to listen on (Glance's port by default)"),
  backend: z.discriminatedUnion("type", [DirBackendConfig, SwiftBackendConfig]).default({ type: "dir" }),
  tokens: z
    .strictObject({
      write: z.array(Token).default([]).describe("Tokens that may publish (CI)"),
      read: z.array(Token).default([]).describe("Tokens that may only read (nodes)"),
    })
    .default({ write: [], read: [] }),
  allowEmptyUploads: z.boolean().default(false).describe("Accept 0-byte image uploads without x-ooo-allow-empty"),
  md5Checksums: z
    .boolean()
    .default(false)
    .describe(
      "Also fill Glance's legacy md5 `checksum` on upload, for clients older than python-glanceclient 2.13 that verify only by md5. Off by default as in Glance since Victoria (which deprecated it and stopped filling it): clients verify by os_hash_value (sha256). md5 runs on one core at ~730 MB/s and halves upload speed (bench/store.ts)",
    ),
  imageSizeCap: z.number().int().positive().default(TIB).describe("Largest image in bytes (Glance's image_size_cap)"),
  tls: z
    .object({
      cert: z.string().min(1).describe("PEM certificate (chain) the store presents"),
      key: z.string().min(1).describe("Its PEM private key (a file of mode 0600)"),
    })
    .optional()
    .describe("Serve https (--tls-cert, --tls-key); clients trust its CA with --ca-file or OOO_STORE_CA"),
  plainHttp: z
    .boolean()
    .default(false)
    .describe("Serve plain http on an address that is not loopback (--plain-http): tokens and images cross the network in clear"),
});
export type StoreConfig = z.infer<typeof StoreConfig>;

export interface ConfigSources {
  file?: string;
  /** Serving needs tokens; tools that open the store directly (gc) do not. */
  tokensOptional?: boolean;
  flags?: {
    dir?: string;
    listen?: string;
    writeTokens?: string[];
    readTokens?: string[];
    allowEmptyUploads?: boolean;
    tls?: { cert?: string; key?: string };
    plainHttp?: boolean;
  };
  env?: Record<string, string | undefined>;
}

const list = (v: string | undefined) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : []);

/**
 * Tokens from flags and the environment are checked where they come from:
 * checked after the merge, a short one in OOO_STORE_WRITE_TOKEN was
 * reported as an entry of the config file, which has none. A token is a
 * secret: the message gives its position and length, never the token.
 */
function tokenProblems(sources: [string, string[]][]): Problem[] {
  return sources.flatMap(([from, tokens]) =>
    tokens.flatMap((t, i) => {
      const r = Token.safeParse(t);
      return r.success ? [] : [{ path: tokens.length > 1 ? `${from} (token ${i + 1})` : from, message: `${r.error.issues[0]!.message}, not ${t.length}` }];
    }),
  );
}

export function loadStoreConfig(sources: ConfigSources): StoreConfig {
  const env = sources.env ?? process.env;
  if (Boolean(sources.flags?.tls?.cert) !== Boolean(sources.flags?.tls?.key)) throw new UsageError("--tls-cert and --tls-key go together: the certificate and its key");
  const fromFile = sources.file ? (parseYamlFile(StoreConfig.partial(), inputFile(sources.file, "--config"), "invalid store config") as Partial<StoreConfig>) : {};
  const f = sources.flags ?? {};
  const tokens = fromFile.tokens ?? { write: [], read: [] };
  const given = {
    write: [["--write-token-file", f.writeTokens ?? []], ["OOO_STORE_WRITE_TOKEN", list(env.OOO_STORE_WRITE_TOKEN)]] as [string, string[]][],
    read: [["--read-token-file", f.readTokens ?? []], ["OOO_STORE_READ_TOKEN", list(env.OOO_STORE_READ_TOKEN)]] as [string, string[]][],
  };
  const problems = tokenProblems([...given.write, ...given.read]);
  if (problems.length) throw new InvalidInput("invalid store tokens", problems);
  const backend = fromFile.backend;
  const merged = {
    ...fromFile,
    dir: f.dir ?? fromFile.dir,
    listen: f.listen ?? fromFile.listen,
    allowEmptyUploads: f.allowEmptyUploads ?? fromFile.allowEmptyUploads,
    tls: f.tls?.cert || f.tls?.key ? { cert: f.tls.cert, key: f.tls.key } : fromFile.tls,
    plainHttp: f.plainHttp ?? fromFile.plainHttp,
    tokens: {
      write: [...tokens.write, ...given.write.flatMap(([, t]) => t)],
      read: [...tokens.read, ...given.read.flatMap(([, t]) => t)],
    },
    backend: backend?.type === "swift" && !backend.key && env.OOO_SWIFT_KEY ? { ...backend, key: env.OOO_SWIFT_KEY } : backend,
  };
  const config = parseWith(StoreConfig, merged, "invalid store configuration", { file: sources.file });
  if (!sources.tokensOptional && !config.tokens.write.length && !config.tokens.read.length)
    throw new UsageError("the store has no tokens: nobody could use it", {
      hint: "Give a write token (--write-token-file, OOO_STORE_WRITE_TOKEN or tokens.write in the config) and read tokens for nodes.",
    });
  const host = config.listen.slice(0, config.listen.lastIndexOf(":"));
  if (!config.tls && !config.plainHttp && !isLoopback(host))
    throw new UsageError(`the store would listen on ${config.listen} with plain http: tokens and images would cross the network in clear`, {
      hint: "Give it a certificate (--tls-cert FILE --tls-key FILE), or say --plain-http (plainHttp: true) if that network is yours alone.",
    });
  if (config.backend.type === "swift" && !config.backend.key)
    throw new UsageError("the swift backend needs its key", { hint: "Set backend.key in the config or OOO_SWIFT_KEY." });
  return config;
}

