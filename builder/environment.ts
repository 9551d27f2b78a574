import { capture } from "../lib/run.ts";
import { stringify as toYaml } from "yaml";
import type { Element } from "./elements/element.ts";
import type { BuildOptions } from "./options.ts";

export interface BuildDirs {
  /** TMP_BUILD_DIR: the work folder of this build. */
  build: string;
  /** TMP_MOUNT_PATH / TARGET_ROOT: the root being built. */
  root: string;
  /** TMP_HOOKS_PATH: the merged elements tree. */
  hooks: string;
  /** TMP_IMAGE_DIR: where block-device and output steps put intermediate files. */
  image: string;
}

/** Variables a hook must not inherit from the builder's own process. */
const DROPPED = new Set(["OOO_BUILD_NS", "NODE_OPTIONS", "BUN_INSTALL"]);

/**
 * The environment DIB gives its hooks, so DIB elements run unchanged:
 * the caller's environment passed through, plus ARCH, IMAGE_NAME,
 * IMAGE_ELEMENT(_YAML), ELEMENTS_PATH, TMP_* paths, DIB_* settings.
 * environment.d files are sourced on top of this by the hook runner.
 */
export function hookEnvironment(
  options: BuildOptions,
  elements: Element[],
  elementsPath: string[],
  dirs: BuildDirs,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !DROPPED.has(k)) env[k] = v;
  const names = elements.map((e) => e.name);
  Object.assign(env, {
    LC_ALL: "C",
    ARCH: options.arch,
    // DIB: -o as given (path included), so that hooks writing `$IMAGE_NAME.vmlinuz`
    // (baremetal, ramdisk elements) put it beside the image.
    IMAGE_NAME: options.output,
    IMAGE_TYPES: options.types.join(" "),
    IMAGE_TYPE: options.types[0]!,
    IMAGE_ELEMENT: names.join(" "),
    IMAGE_ELEMENT_YAML: toYaml(Object.fromEntries(elements.map((e) => [e.name, e.dir]))),
    // DIB exports this bash function; `eval declare -A a=($(get_image_element_array))` works as under DIB.
    "BASH_FUNC_get_image_element_array%%": `() {  echo "${elements.map((e) => `[${e.name}]=${e.dir}`).join(" ")} "\n}`,
    ELEMENTS_PATH: elementsPath.join(":"),
    TMP_BUILD_DIR: dirs.build,
    TMP_MOUNT_PATH: dirs.root,
    TARGET_ROOT: dirs.root,
    TMP_HOOKS_PATH: dirs.hooks,
    TMP_IMAGE_DIR: dirs.image,
    DIB_IMAGE_CACHE: options.imageCache,
    DIB_OFFLINE: options.offline ? "1" : "",
    DIB_DEBUG_TRACE: options.trace ? "1" : (process.env.DIB_DEBUG_TRACE ?? "0"),
    DIB_CHECKSUM: options.checksum ? "1" : "0",
    DIB_NO_TMPFS: options.noTmpfs ? "1" : "0",
    DIB_IMAGE_SIZE: options.imageSize ? String(options.imageSize) : "",
    DIB_ROOT_LABEL: process.env.DIB_ROOT_LABEL ?? "cloudimg-rootfs",
    DIB_ROOT_FSTYPE: process.env.DIB_ROOT_FSTYPE ?? "ext4",
    FS_TYPE: process.env.FS_TYPE ?? "ext4",
    DIB_ARGS: [...options.elements].join(" "),
    // DIB writes it into environment.d (11-dib-install-type.bash); install-types reads it under set -u.
    DIB_DEFAULT_INSTALLTYPE: process.env.DIB_DEFAULT_INSTALLTYPE || "source",
    SOURCE_DATE_EPOCH: String(options.sourceDateEpoch),
  });
  // DIB: `export | grep ' DIB_.*='` — DIB's manifests element writes it into the
  // image (/etc/dib-manifests/dib_environment) and fails under `set -u` without it.
  env.DIB_ENV = Object.keys(env)
    .filter((k) => k.startsWith("DIB_") && k !== "DIB_ENV")
    .sort()
    .map((k) => `declare -x ${k}="${env[k]!.replace(/["\\$`]/g, "\\$&")}"`)
    .join("\n");
  return env;
}

/**
 * Inside the chroot DIB resets PATH and HOME and unsets TMPDIR and
 * VIRTUAL_ENV (host paths that mean nothing there); everything else passes
 * through. Host phases keep them.
 */
export function targetEnvironment(env: Record<string, string>): Record<string, string> {
  const { TMPDIR: _tmpdir, VIRTUAL_ENV: _venv, ...rest } = env;
  return {
    ...rest,
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: "/root",
  };
}

/**
 * The variables that can change what a hook does and so belong in cache
 * keys: DIB_* settings and a few others. Paths of this build's work folder
 * are left out on purpose — they differ on every run.
 */
const NOT_CACHE_RELEVANT = new Set([
  "DIB_ENV", // all DIB_* again, paths included
  "DIB_IMAGE_CACHE",
  "DIB_ARGS",
  "DIB_DEBUG_TRACE",
  "DIB_NO_TMPFS",
  "DIB_OFFLINE",
  "DIB_CHECKSUM",
]);

export function cacheRelevantEnvironment(env: Record<string, string>): string {
  const keep = Object.keys(env)
    .filter((k) => /^(DIB_|ARCH$|SOURCE_DATE_EPOCH$|FS_TYPE$|RUN_PARTS_REGEX$)/.test(k))
    .filter((k) => !NOT_CACHE_RELEVANT.has(k))
    .sort();
  return keep.map((k) => `${k}=${env[k]}`).join("\n");
}

/**
 * The hooks' environment with the environment.d files sourced (on the host,
 * with bash, in order), as DIB's package-installs squash sees it: a `when:
 * DIB_RELEASE=…` or DIB_PYTHON_VERSION set only by an element's
 * environment.d must count.
 */
export async function sourcedEnvironment(env: Record<string, string>, files: string[]): Promise<Record<string, string>> {
  if (!files.length) return env;
  const out = await capture("bash", ["-c", 'set -eu; for f in "$@"; do . "$f"; done; env -0', "bash", ...files], {
    env,
    cleanEnv: true,
    what: "sourcing the elements' environment.d files",
  });
  const result: Record<string, string> = {};
  for (const entry of out.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) result[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return result;
}
