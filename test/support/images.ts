import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { treeHash } from "../../lib/tree-hash.ts";
import { ManifestV1, type Manifest } from "../../wire/manifest.ts";
import { requireCommand, requireRoot } from "./require.ts";

/**
 * Test images, built once per test run and shared by every test file: a
 * stamp (a hash of the code and elements that make the image) says whether
 * the image on disk is still current; the builder's layer cache makes even a
 * rebuild quick. Images live in .cache/test-images/NAME/NAME.*.
 */
export const REPO = resolve(import.meta.dir, "../..");
export const FIXTURE_ELEMENTS = join(REPO, "fixtures/elements");
const ROOT = join(REPO, ".cache/test-images");

export const TEST_IMAGES = {
  /** The golden node: Debian, state layout, networking, agents, debug channel, a state path, a demo template. */
  node: { elements: ["debian-minimal", "ooo-node", "demo-state", "agent-demo"], types: ["raw", "tar"] },
  /** The next version of the node: one more package. Its root is what an in-place upgrade installs. */
  "node-v2": { elements: ["debian-minimal", "ooo-node", "demo-state", "agent-demo"], types: ["tar"], packages: ["less"], output: "node" },
  /**
   * A node with a real stateful service (redis), three versions of one image
   * "kv": v2 has one more package; v3 cannot be configured. In-place
   * upgrades need only the tar; `replace` needs v2's disk too.
   */
  "kv-v1": { elements: ["debian-minimal", "ooo-node", "redis"], types: ["raw", "tar"], output: "kv" },
  "kv-v2": { elements: ["debian-minimal", "ooo-node", "redis"], types: ["raw", "tar"], packages: ["less"], output: "kv" },
  "kv-v3": { elements: ["debian-minimal", "ooo-node", "redis", "broken-configure"], types: ["tar"], packages: ["less"], output: "kv" },
  /** The deploy ramdisk: Debian's generic kernel, busybox, the agent (ooo-agent deploy); with its tar, so that it can be published. */
  ramdisk: { elements: ["ooo-deploy"], types: ["ramdisk", "tar"] },
  /** The tiny static base, no kernel. */
  tiny: { elements: ["busybox-base"], types: ["tar"] },
  /**
   * Plain Debian, and the same with one more package: an upgrade by one
   * package (the store's test and bench). One image name (the -o basename)
   * for both, as two versions of one image.
   */
  debian: { elements: ["debian-minimal"], types: ["tar"] },
  "debian-less": { elements: ["debian-minimal"], types: ["tar"], packages: ["less"], output: "debian" },
} as const satisfies Record<string, ImageSpec>;

interface ImageSpec {
  elements: readonly string[];
  types: readonly string[];
  /** Extra packages (-p). */
  packages?: readonly string[];
  /** The -o basename, which names the image (default: the key). */
  output?: string;
}

export type TestImageName = keyof typeof TEST_IMAGES;

export interface TestImage {
  base: string;
  manifest: Manifest;
}

const memo = new Map<string, Promise<TestImage>>();

function stampOf(name: TestImageName): string {
  // The ramdisk's compression level (builder/outputs/ramdisk.ts) changes its bytes.
  const h = createHash("sha256").update(JSON.stringify(TEST_IMAGES[name])).update(process.env.OOO_RAMDISK_ZSTD_LEVEL ?? "");
  for (const dir of ["builder", "lib", "elements", "fixtures/elements", "wire", "agents"]) {
    const p = join(REPO, dir);
    if (existsSync(p)) h.update(`${dir}:${treeHash(p)}\n`);
  }
  return h.digest("hex");
}

export function buildTestImage(name: TestImageName): Promise<TestImage> {
  let p = memo.get(name);
  if (!p) {
    p = build(name);
    memo.set(name, p);
  }
  return p;
}

async function build(name: TestImageName): Promise<TestImage> {
  requireRoot();
  requireCommand("mmdebstrap", "mkfs.ext4", "mkfs.vfat", "mcopy", "sfdisk", "qemu-img", "grub-mkimage");
  const spec: ImageSpec = TEST_IMAGES[name];
  const dir = join(ROOT, name);
  const base = join(dir, spec.output ?? name);
  const stampFile = join(dir, "stamp");
  const stamp = stampOf(name);
  if (!(existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp && existsSync(`${base}.manifest.json`))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const packages = spec.packages?.length ? ["-p", spec.packages.join(",")] : [];
    const r = await execa(
      "bun",
      [join(REPO, "cli/ooo.ts"), "build-image", "-o", base, "-t", spec.types.join(","), ...packages, "--elements-path", FIXTURE_ELEMENTS, ...spec.elements],
      { reject: false, all: true },
    );
    if (r.exitCode !== 0) throw new Error(`building the ${name} test image failed:\n${String(r.all).split("\n").slice(-30).join("\n")}`);
    writeFileSync(stampFile, stamp);
  }
  return { base, manifest: ManifestV1.parse(JSON.parse(readFileSync(`${base}.manifest.json`, "utf8"))) };
}

/** Run the CLI as a user would; returns exit code and output. */
export async function ooo(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}) {
  const r = await execa("bun", [join(REPO, "cli/ooo.ts"), ...args], {
    reject: false,
    env: options.env,
    cwd: options.cwd ?? REPO,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
