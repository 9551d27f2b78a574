import { afterAll, beforeAll, describe } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXIT } from "../lib/errors.ts";
import { publish } from "../pipeline/publish.ts";
import { type BadInput, badInputTable } from "../test/support/bad-inputs.ts";
import { writeManifest } from "../test/support/manifest.ts";
import { makeRoot, writeCanonicalTar } from "../test/support/roots.ts";
import { READ_TOKEN, startStore, type TestStore } from "../test/support/store.ts";

/**
 * `ooo store …` given what a new user gets wrong (issue 24), against a real
 * store server holding one small image, kv (version 1, unsigned).
 */
let s: TestStore;
let work: string;

beforeAll(async () => {
  s = await startStore();
  work = mkdtempSync(join(tmpdir(), "ooo-store-bad-"));
  makeRoot(join(work, "root"), { files: 4 });
  await writeCanonicalTar(join(work, "root"), join(work, "kv.tar"));
  writeManifest(join(work, "kv"), { name: "kv" });
  await publish({ client: s.client, output: join(work, "kv") });
}, 60_000);

afterAll(async () => {
  await s?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const USAGE = EXIT.usage.code;
const TOKENS = { OOO_STORE_WRITE_TOKEN: "a-write-token-long-enough", OOO_STORE_READ_TOKEN: "a-read-token-long-enough" };
/** serve rows that get past their checks would serve: they listen on a port nobody can have. */
const serve = (...args: string[]) => ["store", "serve", "--listen", "127.0.0.1:1", ...args];

const rows: BadInput[] = [
  // serve: paths and settings (items 1, 8)
  { name: "serve --dir is a file", argv: serve("--dir", "afile"), files: { afile: "x" }, env: TOKENS, exit: USAGE, says: "--dir afile: is a file, not a folder" },
  { name: "serve --write-token-file missing", argv: serve("--dir", "st", "--write-token-file", "missing.tok"), exit: USAGE, says: "--write-token-file missing.tok: does not exist" },
  { name: "serve --read-token-file is a folder", argv: serve("--dir", "st", "--read-token-file", "tokens"), files: { tokens: { dir: true } }, env: TOKENS, exit: USAGE, says: "--read-token-file tokens: is a folder" },
  { name: "serve --config missing", argv: ["store", "serve", "--config", "missing.yaml"], env: TOKENS, exit: USAGE, says: "--config missing.yaml: does not exist" },
  { name: "serve --config not YAML", argv: ["store", "serve", "--config", "c.yaml"], files: { "c.yaml": "dir: [x\n" }, env: TOKENS, exit: USAGE, says: "c.yaml is not valid YAML" },
  { name: "serve --config with a misspelt key", argv: ["store", "serve", "--config", "c.yaml"], files: { "c.yaml": "dir: st\nlisen: 127.0.0.1:1\n" }, env: TOKENS, exit: USAGE, says: "unknown key lisen" },
  { name: "serve --listen port 99999", argv: ["store", "serve", "--dir", "st", "--listen", "127.0.0.1:99999"], env: TOKENS, exit: USAGE, says: "the port must be at most 65535" },
  { name: "serve --listen without a port", argv: ["store", "serve", "--dir", "st", "--listen", "localhost"], env: TOKENS, exit: USAGE, says: "must be HOST:PORT" },
  { name: "serve --listen an address this host lacks", argv: ["store", "serve", "--dir", "st", "--listen", "192.0.2.1:9292", "--plain-http"], env: TOKENS, exit: EXIT.failed.code, says: "This machine has no such address" },
  { name: "serve --tls-cert that does not exist", argv: serve("--dir", "st", "--tls-cert", "c.pem", "--tls-key", "k.pem"), env: TOKENS, exit: USAGE, says: "--tls-cert c.pem: does not exist" },
  { name: "serve --tls-cert without --tls-key", argv: serve("--dir", "st", "--tls-cert", "c.pem"), files: { "c.pem": "x" }, env: TOKENS, exit: USAGE, says: "--tls-cert and --tls-key go together" },
  { name: "serve with a short token", argv: serve("--dir", "st"), env: { OOO_STORE_WRITE_TOKEN: "short" }, exit: USAGE, says: "OOO_STORE_WRITE_TOKEN: a token has at least 16 characters, not 5" },
  { name: "serve without tokens", argv: serve("--dir", "st"), env: { OOO_STORE_WRITE_TOKEN: "", OOO_STORE_READ_TOKEN: "" }, exit: USAGE, says: "the store has no tokens" },
  { name: "serve plain http off loopback", argv: ["store", "serve", "--dir", "st", "--listen", "0.0.0.0:9292"], env: TOKENS, exit: USAGE, says: "with plain http: tokens and images would cross the network in clear" },
  // fetch: outputs (item 2) and paths (item 1)
  { name: "fetch -o onto an existing file", argv: ["store", "fetch", "kv", "-o", "precious.txt"], files: { "precious.txt": "keep me" }, exit: USAGE, says: "precious.txt exists; nothing was written" },
  { name: "fetch -o a folder", argv: ["store", "fetch", "kv", "-o", "fdir"], files: { fdir: { dir: true } }, exit: USAGE, says: "-o fdir: is a folder" },
  { name: "fetch without -o onto an existing NAME.tar", argv: ["store", "fetch", "kv"], files: { "kv.tar": "keep me" }, exit: USAGE, says: "kv.tar exists" },
  { name: "fetch --manifest when the signature file exists", argv: ["store", "fetch", "kv", "--manifest", "-o", "m.json"], files: { "m.json.minisig": "keep me" }, exit: USAGE, says: "m.json.minisig exists" },
  { name: "fetch -o into folders that do not exist yet: made", argv: ["store", "fetch", "kv", "-o", "no/such/kv.tar"], exit: EXIT.ok.code, says: "wrote", leaves: ["no"] },
  { name: "fetch --force replaces a file", argv: ["store", "fetch", "kv", "-o", "old.tar", "--force"], files: { "old.tar": "old" }, exit: EXIT.ok.code, says: "wrote", leaves: ["old.tar"] },
  { name: "fetch of an unknown image into new folders leaves none", argv: ["store", "fetch", "nosuch", "-o", "no/such/x.tar"], exit: EXIT.failed.code, says: "no image in the store matches nosuch: no image is named nosuch (names: kv)" },
  { name: "fetch --seed that does not exist", argv: ["store", "fetch", "kv", "--seed", "/nonexistent", "-o", "x.tar"], exit: USAGE, says: "--seed /nonexistent: does not exist" },
  { name: "fetch --seed before the image (one value per --seed)", argv: ["store", "fetch", "--seed", "/nonexistent", "kv"], exit: USAGE, says: "--seed /nonexistent: does not exist" },
  { name: "fetch --token-file missing", argv: ["store", "fetch", "kv", "--token-file", "missing"], exit: USAGE, says: "--token-file missing: does not exist" },
  { name: "fetch --token-file empty", argv: ["store", "fetch", "kv", "--token-file", "t"], files: { t: "\n" }, exit: USAGE, says: "--token-file t: its first line is empty" },
  { name: "fetch --ca-file missing", argv: ["store", "fetch", "kv", "--ca-file", "ca.pem"], exit: USAGE, says: "cannot read the store's CA certificate ca.pem (from --ca-file)" },
  { name: "fetch --store not a URL", argv: ["store", "fetch", "kv", "--store", "store:9292"], exit: USAGE, says: `--store "store:9292": must be an http:// or https:// URL` },
  { name: "fetch --store nobody answers at", argv: ["store", "fetch", "kv", "--store", "http://127.0.0.1:1"], exit: EXIT.failed.code, says: "The address comes from --store or OOO_STORE_URL" },
  { name: "fetch OOO_STORE_URL not a URL", argv: ["store", "fetch", "kv"], env: { OOO_STORE_URL: "nonsense" }, exit: USAGE, says: `OOO_STORE_URL "nonsense": must be an http:// or https:// URL` },
  { name: "fetch without a token", argv: ["store", "fetch", "kv", "-o", "x.tar"], env: { OOO_STORE_TOKEN: "" }, exit: EXIT.refused.code, says: "401" },
  { name: "fetch a reference that is none", argv: ["store", "fetch", "kv@", "-o", "x.tar"], exit: USAGE, says: 'image reference "kv@"' },
  { name: "fetch --source-date-epoch abc", argv: ["store", "fetch", "kv", "--source-date-epoch", "abc", "-o", "x.tar"], exit: USAGE, says: "--source-date-epoch must be a whole number" },
  { name: "fetch -o twice", argv: ["store", "fetch", "kv", "-o", "a.tar", "-o", "b.tar"], exit: USAGE, says: "-o was given 2 times" },
  // verify, list, show
  { name: "verify --key missing", argv: ["store", "verify", "kv", "--key", "missing.pub"], exit: USAGE, says: "--key missing.pub: does not exist" },
  { name: "verify --key that is no key", argv: ["store", "verify", "kv", "--key", "bad.pub"], files: { "bad.pub": "hello\n" }, exit: USAGE, says: "cannot use bad.pub" },
  { name: "verify without --key", argv: ["store", "verify", "kv"], exit: USAGE, says: "missing --key" },
  { name: "show a mistyped digest", argv: ["store", "show", "sha256:1234"], exit: USAGE, says: "a digest is sha256:" },
  { name: "show an image that does not exist", argv: ["store", "show", "kv@9"], exit: EXIT.failed.code, says: "kv" },
  { name: "list with a token the store does not know", argv: ["store", "list"], env: { OOO_STORE_TOKEN: "not-a-token-of-this-store" }, exit: EXIT.refused.code, says: "401" },
  // gc (item 6)
  { name: "gc --dir of a typo", argv: ["store", "gc", "--dir", "typo"], exit: USAGE, says: "typo is not an ooo image store (it has no images/ folder); nothing was done" },
  { name: "gc --dir of a file", argv: ["store", "gc", "--dir", "afile"], files: { afile: "x" }, exit: USAGE, says: "is not an ooo image store" },
  { name: "gc --config missing", argv: ["store", "gc", "--config", "missing.yaml"], exit: USAGE, says: "--config missing.yaml: does not exist" },
  { name: "gc of a store its server holds", argv: () => ["store", "gc", "--dir", s.dir], exit: EXIT.failed.code, says: "another ooo store server is using" },
  // the command itself (item 9)
  { name: "store without a command", argv: ["store"], exit: USAGE, says: "name a store command: serve, fetch, verify, list, show, gc" },
  { name: "store with an unknown command", argv: ["store", "fecth", "kv"], exit: USAGE, says: "unknown command: ooo store fecth. Did you mean ooo store fetch? The store commands are: serve, fetch" },
  { name: "fetch without an image", argv: ["store", "fetch"], exit: USAGE, says: "missing IMAGE: ooo store fetch <image>" },
];

describe("ooo store refuses bad input cleanly", () => {
  badInputTable(rows, { env: () => ({ OOO_STORE_URL: s.url, OOO_STORE_TOKEN: READ_TOKEN, OOO_STORE_WRITE_TOKEN: "", OOO_STORE_READ_TOKEN: "" }) });
});
