import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { DEFAULT_IMAGE } from "../../builder/defaults.ts";
import { ManifestV1 } from "../../wire/manifest.ts";
import { buildTestImage, REPO } from "../support/images.ts";
import { requireCommand, requireRoot } from "../support/require.ts";
import { differingEntries } from "../support/tar-diff.ts";

/**
 * The default image is the same bytes from any checkout, built anywhere:
 * this working tree is cloned twice, into differently named folders, and
 * the default image's tar (its digest is the image's) is built in each. The
 * second clone and build vary what Debian's reprotest varies: the folder,
 * the hostname (a UTS namespace of its own), the umask (002, the clone's
 * too), TZ, the locale, and the CPUs (taskset -c 0: one). One digest; on a
 * difference, the entries that differ and what diffoscope says about each.
 *
 * Cheap as it can be: both builds restore the suite's cached base root
 * (the root.d layer, shared with the `node` test image) and run every hook
 * after it, side by side, each with a private image cache (the shared
 * layers linked in, its own saved apart). A data-only element with a fresh
 * nonce (`repro-nonce`: no hooks, no files any hook reads) changes every
 * layer key after root.d, so no layer from an earlier build of the default
 * image can stand in for a hook; it changes nothing in the image (built
 * without it, the default image has the same digest: checked when this test
 * was written). Only the tar is
 * written: the raw disk is made from the same root, its UUIDs from the
 * digest.
 */

const NONCE_ELEMENT = "repro-nonce";
let scratch: string;

interface Variant {
  /** Where the clone goes, under the scratch folder. */
  folder: string;
  umask: string;
  hostname: string;
  env: Record<string, string>;
  oneCpu: boolean;
}

const VARIANTS: Variant[] = [
  {
    folder: "a",
    umask: "022",
    hostname: "ooo-repro-a",
    env: { TZ: "GMT+12", LANG: "C.UTF-8", LANGUAGE: "en_US:en" },
    oneCpu: false,
  },
  {
    folder: "elsewhere/clone-with-a-longer-name",
    umask: "002",
    hostname: "another-build-host",
    env: { TZ: "GMT-14", LANG: "fr_CH.UTF-8", LC_ALL: "fr_CH.UTF-8", LANGUAGE: "fr_CH:fr" },
    oneCpu: true,
  },
];

/** The environment a variant runs with: the caller's, its own locale and time zone. */
function envOf(v: Variant): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, val] of Object.entries(process.env)) if (val !== undefined && !/^(LC_|LANG|TZ$)/.test(k)) env[k] = val;
  return { ...env, ...v.env };
}

/** Run `cmd` as the variant: its hostname (own UTS namespace), umask, environment and CPUs. */
function asVariant(v: Variant, cmd: string[], cwd: string) {
  const cpus = v.oneCpu ? ["taskset", "-c", "0"] : [];
  return execa(
    "unshare",
    ["--uts", "--", "sh", "-c", 'hostname "$1" && umask "$2" && shift 2 && exec "$@"', "sh", v.hostname, v.umask, ...cpus, ...cmd],
    { cwd, env: envOf(v), extendEnv: false, reject: false, all: true },
  );
}

async function mustRun(what: string, r: ReturnType<typeof asVariant>) {
  const done = await r;
  if (done.exitCode !== 0) throw new Error(`${what} failed (exit ${done.exitCode}):\n${String(done.all).slice(-3000)}`);
  return done;
}

/**
 * The working tree as a tree object (tracked files with their changes,
 * untracked ones that are not ignored), through a scratch index: what the
 * clones check out, so that uncommitted work is what gets tested.
 */
async function workingTree(): Promise<string> {
  const index = join(scratch, "index");
  const real = (await execa("git", ["-C", REPO, "rev-parse", "--path-format=absolute", "--git-path", "index"])).stdout;
  if (existsSync(real)) writeFileSync(index, readFileSync(real));
  const env = { GIT_INDEX_FILE: index };
  await execa("git", ["-C", REPO, "add", "--all"], { env });
  return (await execa("git", ["-C", REPO, "write-tree"], { env })).stdout.trim();
}

/** The builder's default image cache: the suite's shared layers. */
function sharedImageCache(): string {
  return process.env.DIB_IMAGE_CACHE ?? join(homedir(), ".cache", "image-create");
}

/**
 * A private image cache with the shared layers linked in: the layers the
 * build saves stay in it. Its package archive is its own too (the default
 * image fetches 1.8 MB after the base root): a build elsewhere on the
 * machine that shares the suite's archive without taking turns (DIB's own
 * package-installs) cannot fail this one.
 */
function privateImageCache(dir: string): string {
  const layers = join(sharedImageCache(), "ooo-layers");
  mkdirSync(join(dir, "ooo-layers"), { recursive: true });
  if (existsSync(layers))
    for (const name of readdirSync(layers).filter((n) => n.endsWith(".tar") && !n.startsWith(".")))
      symlinkSync(join(layers, name), join(dir, "ooo-layers", name));
  return dir;
}

interface Built {
  tar: string;
  digest: string;
}

async function cloneAndBuild(v: Variant, tree: string, nonce: string): Promise<Built> {
  const base = join(scratch, v.folder);
  const clone = join(base, "ooo");
  mkdirSync(base, { recursive: true });
  await mustRun(`cloning into ${clone}`, asVariant(v, ["git", "clone", "--quiet", "--no-checkout", REPO, clone], base));
  await mustRun(`checking out the working tree in ${clone}`, asVariant(v, ["git", "read-tree", "-u", "--reset", tree], clone));
  await mustRun(`bun install in ${clone}`, asVariant(v, [process.execPath, "install", "--frozen-lockfile"], clone));

  const elements = join(base, "elements");
  mkdirSync(join(elements, NONCE_ELEMENT), { recursive: true });
  // A file name no other element has: DIB's merge copies top-level files into the hooks tree.
  writeFileSync(join(elements, NONCE_ELEMENT, NONCE_ELEMENT), `${nonce}\n`);
  const out = join(base, "out", "default");
  const t0 = performance.now();
  const build = await mustRun(
    `building the default image in ${clone}`,
    asVariant(
      v,
      [process.execPath, "cli/ooo.ts", "build-image", "-o", out, "-t", "tar", "--image-cache", privateImageCache(join(base, "cache")), "--elements-path", elements, ...DEFAULT_IMAGE.elements, NONCE_ELEMENT],
      clone,
    ),
  );
  // Both builds should start from the suite's base root; a cold one costs a minute more.
  const restored = /restore cached root after (\S+)/.exec(String(build.all))?.[1];
  const from = restored ? `the cached root after ${restored}` : "nothing cached";
  console.error(`reproducible: built in ${v.folder} in ${((performance.now() - t0) / 1000).toFixed(1)} s, from ${from}`);
  const manifest = ManifestV1.parse(JSON.parse(readFileSync(`${out}.manifest.json`, "utf8")));
  return { tar: `${out}.tar`, digest: manifest.digest };
}

/** What differs between the two tars: every differing entry's header, and diffoscope on the first few whose bytes differ. */
async function explain(a: Built, b: Built): Promise<string> {
  const diffs = await differingEntries(a.tar, b.tar);
  const lines = [`${diffs.length} entries differ between ${a.tar} and ${b.tar}:`];
  for (const d of diffs.slice(0, 30)) lines.push(`  ${d.name}\n    ${d.first ?? "(missing)"}\n    ${d.second ?? "(missing)"}`);
  const dir = join(scratch, "differing");
  mkdirSync(dir, { recursive: true });
  for (const [i, d] of diffs.filter((x) => x.contentDiffers).slice(0, 3).entries()) {
    const files = [a, b].map((built, side) => {
      const file = join(dir, `${i}-${side ? "b" : "a"}-${d.name.split("/").pop()}`);
      writeFileSync(file, Bun.spawnSync(["tar", "-xOf", built.tar, d.name]).stdout);
      return file;
    });
    // Not objdump and readelf: disassembling a 100 MiB executable takes minutes, and
    // what differs in ours is its embedded JavaScript, which `strings` shows.
    const r = await execa(
      "diffoscope",
      ["--text", "-", "--timeout", "60", "--exclude-command", "^objdump", "--exclude-command", "^readelf", ...files],
      { reject: false, all: true, timeout: 180_000 },
    );
    lines.push(`diffoscope ${d.name}:\n${String(r.all).slice(0, 8000)}`);
  }
  return lines.join("\n");
}

beforeAll(async () => {
  requireRoot();
  requireCommand("git", "unshare", "hostname", "taskset", "diffoscope", "mmdebstrap");
  scratch = mkdtempSync("/var/tmp/ooo-repro-");
  // Puts the base root both builds restore into the shared layer cache (free when the suite built it already).
  await buildTestImage("node");
}, 600_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}, 120_000);

test(
  "the default image from two clones, on two hosts, in two folders, umasks, time zones, locales and CPU counts: one digest",
  async () => {
    const tree = await workingTree();
    const nonce = randomBytes(16).toString("hex");
    const [a, b] = await Promise.all(VARIANTS.map((v) => cloneAndBuild(v, tree, nonce)));
    if (a!.digest !== b!.digest) console.error(await explain(a!, b!));
    expect(b!.digest).toBe(a!.digest);
  },
  600_000,
);
