import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./store.ts";
import { requireCommand, requireRoot } from "./require.ts";
import { sha256File, writeManifest } from "./manifest.ts";

/**
 * The two real images the store's end-to-end test and bench use: Debian's
 * debian-minimal, and the same with one more package (`less`) — an upgrade
 * that changes one package. Built with ooo's own builder into one folder
 * that every test and bench of a run (and later runs) share: the builder's
 * layer cache makes a rebuild take seconds, and an unchanged tar is not
 * rebuilt at all within a run. Until the builder writes NAME.manifest.json
 * itself, a manifest is written beside the tar.
 */
export const IMAGES_DIR = join(tmpdir(), "ooo-store-images");

export interface DebianImages {
  /** -o paths: `${base}.tar`, `${base}.manifest.json`. */
  base: string;
  less: string;
}

let built: Promise<DebianImages> | undefined;

async function build(output: string, extra: string[]) {
  const p = Bun.spawn(["bun", join(REPO, "cli/ooo.ts"), "build-image", "debian-minimal", "-o", output, "-t", "tar", ...extra], {
    cwd: REPO,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [err, code] = [await new Response(p.stderr).text(), await p.exited];
  if (code !== 0) throw new Error(`building ${output} failed (exit ${code}):\n${err.slice(-3000)}`);
  const manifest = `${output}.manifest.json`;
  const tarSha = sha256File(`${output}.tar`);
  const current = existsSync(manifest) ? (JSON.parse(readFileSync(manifest, "utf8")) as { digest?: string }) : undefined;
  if (current?.digest !== `sha256:${tarSha}`) writeManifest(output, { name: "debian-minimal" });
}

export function debianImages(): Promise<DebianImages> {
  built ??= (async () => {
    requireRoot();
    requireCommand("mmdebstrap");
    mkdirSync(IMAGES_DIR, { recursive: true });
    const images = { base: join(IMAGES_DIR, "debian-minimal"), less: join(IMAGES_DIR, "debian-minimal-less") };
    await build(images.base, []);
    await build(images.less, ["-p", "less"]);
    return images;
  })();
  return built;
}

