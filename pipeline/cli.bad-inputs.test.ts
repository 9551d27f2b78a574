import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXIT } from "../lib/errors.ts";
import { type BadInput, badInputTable } from "../test/support/bad-inputs.ts";
import { writeManifest } from "../test/support/manifest.ts";
import { makeRoot, writeCanonicalTar } from "../test/support/roots.ts";
import { READ_TOKEN, REPO, startStore, type TestStore, WRITE_TOKEN } from "../test/support/store.ts";
import { publish } from "./publish.ts";

/**
 * `ooo publish`, `promote`, `test-image` and `key` given what a new user
 * gets wrong (issue 24), against a real store holding kv version 1. Every
 * refused publish leaves the store as it was: no record, no tag.
 */
let s: TestStore;
let work: string;

/** A finished build of image `name` in `dir` (NAME.tar and NAME.manifest.json), as build-image leaves it. */
async function build(dir: string, name: string, files = 3) {
  makeRoot(join(dir, `${name}-root`), { files });
  await writeCanonicalTar(join(dir, `${name}-root`), join(dir, `${name}.tar`));
  rmSync(join(dir, `${name}-root`), { recursive: true });
  writeManifest(join(dir, name), { name });
}

beforeAll(async () => {
  s = await startStore();
  work = mkdtempSync(join(tmpdir(), "ooo-pipeline-bad-"));
  await build(work, "kv");
  await publish({ client: s.client, output: join(work, "kv") });
}, 60_000);

afterAll(async () => {
  await s?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The names of the store's images: a refused publish adds none. */
async function names(): Promise<string[]> {
  const out: string[] = [];
  for await (const i of s.client.listImages({})) out.push(`${i.name}@${i.ooo_version}${i.tags.length ? `:${i.tags.join(",")}` : ""}`);
  return out.sort();
}

const USAGE = EXIT.usage.code;
const withBuild = (name: string) => (dir: string) => build(dir, name);

const rows: BadInput[] = [
  // publish: paths and values checked before anything is sent (items 1, 3)
  { name: "publish a path that is no build", argv: ["publish", "out/nosuch"], exit: USAGE, says: "the build's manifest out/nosuch.manifest.json: does not exist" },
  { name: "publish without a build and no default one", argv: ["publish"], exit: USAGE, says: "the default build's manifest out/default.manifest.json: does not exist" },
  { name: "publish the tar instead of the -o path", argv: ["publish", "t1.tar"], before: withBuild("t1"), exit: USAGE, says: "Give the -o path without .tar: ooo publish t1" },
  { name: "publish --tag bad/tag", argv: ["publish", "t2", "--tag", "bad/tag"], before: withBuild("t2"), exit: USAGE, says: '--tag "bad/tag": must be letters, digits' },
  { name: "publish --tag empty", argv: ["publish", "t3", "--tag", ""], before: withBuild("t3"), exit: USAGE, says: '--tag "": must be' },
  { name: "publish --image-version with a space", argv: ["publish", "t4", "--image-version", "1 2"], before: withBuild("t4"), exit: USAGE, says: "--image-version \"1 2\"" },
  { name: "publish --sign missing", argv: ["publish", "t5", "--sign", "ci.key"], before: withBuild("t5"), exit: USAGE, says: "--sign ci.key: does not exist" },
  { name: "publish --sign a file that is no key", argv: ["publish", "t6", "--sign", "ci.key"], before: withBuild("t6"), files: { "ci.key": { text: "nonsense\n", mode: 0o600 } }, exit: USAGE, says: "cannot use ci.key" },
  { name: "publish --token-file missing", argv: ["publish", "t7", "--token-file", "w.token"], before: withBuild("t7"), exit: USAGE, says: "--token-file w.token: does not exist" },
  { name: "publish --progress-file a folder", argv: ["publish", "t8", "--progress-file", "p"], before: withBuild("t8"), files: { p: { dir: true } }, exit: USAGE, says: "--progress-file p: is a folder" },
  { name: "publish a manifest that is not JSON", argv: ["publish", "t9"], files: { "t9.manifest.json": "{" }, exit: USAGE, says: "t9.manifest.json is not valid JSON" },
  { name: "publish a manifest of another format", argv: ["publish", "t10"], files: { "t10.manifest.json": '{"version": 1, "name": 5}' }, exit: USAGE, says: "name: must be text, not a number" },
  { name: "publish a build whose tar is gone", argv: ["publish", "t11"], before: async (d) => (await build(d, "t11"), rmSync(join(d, "t11.tar"))), exit: USAGE, says: "artifact t11.tar listed in the manifest is missing" },
  { name: "publish a build whose tar changed size", argv: ["publish", "t12"], before: async (d) => (await build(d, "t12"), writeFileSync(join(d, "t12.tar"), "x")), exit: USAGE, says: "the manifest says" },
  { name: "publish with a read token", argv: ["publish", "t13"], before: withBuild("t13"), env: { OOO_STORE_TOKEN: READ_TOKEN }, exit: EXIT.refused.code, says: "403" },
  // promote
  { name: "promote --tag with a space", argv: ["promote", "kv@1", "--tag", "bad tag"], exit: USAGE, says: '--tag "bad tag": must be' },
  { name: "promote without --tag", argv: ["promote", "kv@1"], exit: USAGE, says: "missing --tag: ooo promote <image> [label]" },
  { name: "promote an image that does not exist", argv: ["promote", "kv@7", "--tag", "live"], exit: EXIT.failed.code, says: "kv has" },
  { name: "promote a reference that is none", argv: ["promote", "kv@", "--tag", "live"], exit: USAGE, says: 'image reference "kv@"' },
  { name: "promote with a read token", argv: ["promote", "kv@1", "--tag", "live"], env: { OOO_STORE_TOKEN: READ_TOKEN }, exit: EXIT.refused.code, says: "403" },
  { name: "promote a reference and a version", argv: ["promote", "kv@1", "1", "--tag", "live"], exit: USAGE, says: "promote takes a reference (kv@1) or NAME and a version, not both" },
  { name: "promote with a word too many", argv: ["promote", "kv", "1", "2", "--tag", "live"], exit: USAGE, says: "unexpected argument 2" },
  // test-image
  { name: "test-image a path that is no build", argv: ["test-image", "nosuch"], exit: USAGE, says: "cannot test nosuch: no manifest at" },
  { name: "test-image a build without a disk", argv: ["test-image", "t14"], before: withBuild("t14"), exit: USAGE, says: "the build made no disk image; build it with -t raw or -t qcow2" },
  { name: "test-image --boot sideways", argv: ["test-image", "x", "--boot", "sideways"], exit: USAGE, says: "--boot: unknown boot 'sideways' (direct, bios, uefi, disk or all)" },
  { name: "test-image --timeout abc", argv: ["test-image", "x", "--timeout", "abc"], exit: USAGE, says: "--timeout must be a number of seconds above 0" },
  // key generate (a key is never replaced: not even --force)
  { name: "key generate over an existing key", argv: ["key", "generate", "ci", "--unencrypted"], files: { "ci.key": "secret" }, exit: USAGE, says: "ci.key exists: ooo never overwrites a key" },
  { name: "key generate inside a file", argv: ["key", "generate", "afile/ci", "--unencrypted"], files: { afile: "x" }, exit: USAGE, says: "afile is a file, not a folder" },
  { name: "key generate on a read-only filesystem", argv: ["key", "generate", "ro/ci", "--unencrypted"], files: { ro: { readOnlyDir: true } }, exit: USAGE, says: "read-only filesystem" },
  { name: "key generate without a terminal for the password", argv: ["key", "generate", "ci"], env: { OOO_SIGNING_KEY_PASSWORD: undefined }, exit: USAGE, says: "there is no terminal to ask it on" },
  { name: "key generate with an empty password", argv: ["key", "generate", "ci"], env: { OOO_SIGNING_KEY_PASSWORD: "" }, exit: USAGE, says: "OOO_SIGNING_KEY_PASSWORD is set but empty" },
  { name: "key generate into folders that do not exist yet: made", argv: ["key", "generate", "keys/ci", "--unencrypted"], exit: EXIT.ok.code, says: "wrote keys/ci.key", leaves: ["keys"] },
  { name: "key without a command", argv: ["key"], exit: USAGE, says: "name a key command: generate" },
  { name: "key generate without a name", argv: ["key", "generate"], exit: USAGE, says: "missing NAME" },
];

describe("ooo publish, promote, test-image and key refuse bad input cleanly", () => {
  let before: string[];
  beforeAll(async () => void (before = await names()));
  badInputTable(rows, { env: () => ({ OOO_STORE_URL: s.url, OOO_STORE_TOKEN: WRITE_TOKEN }) });
  test("no refused publish or promote left a record or a tag in the store", async () => {
    expect(await names()).toEqual(before);
  });
});

/**
 * Ctrl-C in the middle of a publish (issue 24, item 3): it says which
 * record it leaves and that the same command finishes it — and it does.
 * The upload goes through a front that never answers data uploads.
 */
test("Ctrl-C during a publish says what it leaves, and the same publish then finishes it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ooo-publish-int-"));
  const stall = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: async (req) => {
      const url = new URL(req.url);
      if (req.method === "PUT" && /\/file$|\/v2\/ooo\/blobs\//.test(url.pathname)) return new Promise<Response>(() => {});
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
      return fetch(`${s.url}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body });
    },
  });
  try {
    // Its own bytes: chunks the store already holds would not be uploaded at all.
    await build(dir, "late", 4);
    const env = { ...process.env, NO_COLOR: "1", OOO_STORE_TOKEN: WRITE_TOKEN };
    const p = Bun.spawn(["bun", join(REPO, "cli/ooo.ts"), "publish", join(dir, "late")], { env: { ...env, OOO_STORE_URL: `http://127.0.0.1:${stall.port}` }, stderr: "pipe", stdout: "ignore" });
    let stderr = "";
    const reader = (async () => {
      for await (const chunk of p.stderr as ReadableStream<Uint8Array>) stderr += new TextDecoder().decode(chunk);
    })();
    for (const deadline = Date.now() + 20_000; !/▶ upload/.test(stderr) && Date.now() < deadline; ) await Bun.sleep(50);
    expect(stderr).toMatch(/▶ upload/);
    p.kill("SIGINT");
    const code = await p.exited;
    await reader;
    expect(code).toBe(EXIT.interrupted.code);
    expect(stderr).toMatch(/interrupted by SIGINT: image [0-9a-f-]{36} \(late version 1\) is left in the store queued, without all its data; run the same ooo publish again: it finishes this image/);
    const again = Bun.spawnSync(["bun", join(REPO, "cli/ooo.ts"), "publish", join(dir, "late")], { env: { ...env, OOO_STORE_URL: s.url } });
    expect(again.exitCode).toBe(0);
    expect((await names()).filter((n) => n.startsWith("late@"))).toEqual(["late@1"]);
    let status = "";
    for await (const i of s.client.listImages({ name: "late" })) status = i.status;
    expect(status).toBe("active");
  } finally {
    stall.stop(true);
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
