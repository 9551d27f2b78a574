import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { log } from "../lib/log.ts";
import { stringify as toYaml } from "yaml";
import { capture } from "../lib/run.ts";
import type { Element } from "./elements/element.ts";
import { PHASE_NAMES, type Phase } from "./elements/phases.ts";
import type { BuildOptions } from "./options.ts";
import { ROOT_FS_LABEL } from "./outputs/steps.ts";

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

/** What the hooks' environment is made from. */
export interface EnvContext {
  options: BuildOptions;
  elements: Element[];
  elementsPath: string[];
  dirs: BuildDirs;
  /** The caller's environment as hooks may see it (callerEnvironment). */
  caller: Record<string, string>;
  /** DIB's lib/ folder when diskimage-builder is installed (its elements source files from it). */
  dibLib?: string;
  /** The disk size DIB computes after post-root.d, in KiB (dibImageSizeKiB): block-device.d on see it. */
  imageSizeKiB?: number;
}

/** Which hooks see a variable: every phase, the phases outside or inside the chroot, some phases, or a phase and all after it. */
type Phases = "all" | "host" | "target" | readonly Phase[] | { from: Phase };

/** Not exported, even if the caller exported it. */
const UNSET = Symbol("unset");
/** A value, UNSET, or undefined: the caller's value (if any) passes unchanged. */
type Value = string | typeof UNSET | undefined;

interface Exported {
  name: string;
  phases: Phases;
  value: (c: EnvContext) => Value;
  /** Where diskimage-builder 3.13 sets it (lib/…), or why ooo differs. */
  dib: string;
}

const TARGET_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const given = (c: EnvContext, name: string) => c.caller[name];
const when = (on: boolean, value: string) => (on ? value : undefined);

/** root's login shell on this host, as sudo sets SHELL when the caller has none (a CI runner often has none). */
function rootShell(): string {
  const entry = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("root:"));
  return entry?.split(":")[6] || "/bin/sh";
}

/** $_LIB/die: sourced and `export -f`ed by disk-image-create. */
const DIE = "() {  local exitcode=$?;\n set +o xtrace;\n echo $@;\n exit $exitcode\n}";
/** disk-image-create's _ps4, exported with PS4 for `set -x` traces. */
const PS4_FUNCTION = '() {  IFS=" " called=($(caller 0));\n local f=$(readlink -f ${called[2]});\n f=${f##*site-packages/};\n printf "%-80s " "$f:${called[1]}:${called[0]}"\n}';

/**
 * Everything disk-image-create (diskimage-builder 3.13, as Debian ships it)
 * exports to hooks, phase by phase, on top of the caller's environment — so
 * that DIB's own elements run unchanged. test/integration/dib-elements.test.ts
 * compares each phase with what DIB itself gives the same hooks. Withheld
 * from the caller's part: ooo's secrets (callerEnvironment).
 *
 * Where ooo differs on purpose, the entry says so: SOURCE_DATE_EPOCH is
 * ooo's one addition; DIB_ROOT_LABEL names ooo's root filesystem; there is
 * no loop device, so IMAGE_BLOCK_DEVICE(S) are empty; inside the chroot PATH
 * has no literal `$PATH:` in front (DIB's quoting slip); SUDO_COMMAND, which
 * sudo adds to DIB's chroot phases, is not made up.
 */
export const DIB_EXPORTS: readonly Exported[] = [
  { name: "DIB_PYTHON_EXEC", phases: "all", dib: "disk_image_create.py: sys.executable", value: (c) => pythonExec(c.caller) },
  { name: "_LIB", phases: "all", dib: "disk_image_create.py: paths.get_path('lib'); unset without DIB installed", value: (c) => c.dibLib ?? UNSET },
  { name: "LC_ALL", phases: "all", dib: "disk-image-create:25", value: () => "C" },
  { name: "DIB_ARGS", phases: "all", dib: 'disk-image-create:28 ("$@")', value: (c) => c.options.args.join(" ") },
  { name: "DIB_ENV", phases: "all", dib: "disk-image-create:29 (the caller's DIB_* then)", value: (c) => dibEnv(c) },
  { name: "PS4", phases: "host", dib: "disk-image-create:231 (bash, as root, resets it to '+ '; sudo drops it in the chroot)", value: () => "+ $(_ps4):   " },
  { name: "BASH_FUNC__ps4%%", phases: "host", dib: "disk-image-create:230 (sudo drops functions in the chroot)", value: () => PS4_FUNCTION },
  { name: "BASH_FUNC_die%%", phases: "host", dib: "lib/die", value: () => DIE },
  { name: "DIB_DEBUG_TRACE", phases: "all", dib: "disk-image-create:124,148 (+1 per -x)", value: (c) => String(Number(given(c, "DIB_DEBUG_TRACE") || 0) + c.options.trace) },
  { name: "DIB_IMAGE_CACHE", phases: "all", dib: "disk-image-create:177", value: (c) => c.options.imageCache },
  { name: "DIB_LOCKFILES", phases: "all", dib: "disk-image-create:183", value: (c) => given(c, "DIB_LOCKFILES") ?? join(homedir(), ".cache/dib/lockfiles") },
  { name: "ARCH", phases: "all", dib: "common-defaults:34, -a", value: (c) => c.options.arch },
  { name: "DIB_CHECKSUM", phases: "all", dib: "common-defaults:37, --checksum", value: (c) => (c.options.checksum ? "1" : (given(c, "DIB_CHECKSUM") ?? "0")) },
  { name: "DIB_NO_TMPFS", phases: "all", dib: "common-defaults:38, --no-tmpfs", value: (c) => (c.options.noTmpfs ? "1" : (given(c, "DIB_NO_TMPFS") ?? "0")) },
  { name: "DIB_MIN_TMPFS", phases: "all", dib: "common-defaults:39", value: (c) => given(c, "DIB_MIN_TMPFS") ?? "2" },
  { name: "ELEMENTS_PATH", phases: "all", dib: "common-defaults:42 (ooo: --elements-path, ELEMENTS_PATH, ooo's elements)", value: (c) => c.elementsPath.join(":") },
  { name: "DIB_OFFLINE", phases: "all", dib: "common-defaults:44, --offline", value: (c) => (c.options.offline ? "1" : (given(c, "DIB_OFFLINE") ?? "")) },
  { name: "PATH", phases: "host", dib: "common-defaults:49 (sbin folders appended when missing)", value: (c) => hostPath(given(c, "PATH") ?? "") },
  { name: "PATH", phases: "target", dib: "img-functions run_in_target (without DIB's literal `$PATH:` in front)", value: () => TARGET_PATH },
  { name: "FS_TYPE", phases: "all", dib: "img-defaults:77", value: (c) => given(c, "FS_TYPE") ?? "ext4" },
  { name: "IMAGE_TYPE", phases: "all", dib: "img-defaults:79 (-t does not change it)", value: (c) => given(c, "IMAGE_TYPE") ?? "qcow2" },
  { name: "IMAGE_NAME", phases: "all", dib: "img-defaults:80, -o; disk-image-create:257", value: (c) => imageName(c.options) },
  { name: "COMPRESS_IMAGE", phases: "all", dib: "disk-image-create:127,149 (exported by -u)", value: (c) => (c.options.uncompressed ? "" : c.caller.COMPRESS_IMAGE === undefined ? undefined : "true") },
  { name: "SKIP_BASE", phases: "all", dib: "disk-image-create:151 (-n)", value: (c) => when(c.options.skipBase, "1") },
  { name: "DIB_IMAGE_SIZE", phases: ["root.d", "extra-data.d", "pre-install.d", "install.d", "post-install.d", "post-root.d"], dib: "disk-image-create:154 (--image-size)", value: (c) => (c.options.imageSize === undefined ? undefined : String(c.options.imageSize)) },
  { name: "DIB_IMAGE_SIZE", phases: { from: "block-device.d" }, dib: "disk-image-create:379-485 (the disk's size in KiB)", value: (c) => String(c.imageSizeKiB ?? 0) },
  { name: "LOGFILE", phases: "all", dib: "disk-image-create:168 (--logfile)", value: (c) => c.options.logfile },
  { name: "IMAGE_ELEMENT", phases: "all", dib: "common-functions arg_to_elements", value: (c) => c.elements.map((e) => e.name).join(" ") },
  { name: "IMAGE_ELEMENT_YAML", phases: "all", dib: "element-info --env", value: (c) => toYaml(Object.fromEntries(c.elements.map((e) => [e.name, e.dir]))) },
  // `eval declare -A a=($(get_image_element_array))` works as under DIB.
  { name: "BASH_FUNC_get_image_element_array%%", phases: "host", dib: "element-info --env (sudo drops functions in the chroot)", value: (c) => `() {  echo "${c.elements.map((e) => `[${e.name}]=${e.dir}`).join(" ")} "\n}` },
  { name: "TMP_BUILD_DIR", phases: "all", dib: "common-functions mk_build_dir", value: (c) => c.dirs.build },
  { name: "TMP_IMAGE_DIR", phases: "all", dib: "common-functions mk_build_dir", value: (c) => c.dirs.image },
  { name: "OUT_IMAGE_PATH", phases: "all", dib: "common-functions mk_build_dir (empty then)", value: () => "" },
  { name: "TMP_HOOKS_PATH", phases: "all", dib: "common-functions mk_build_dir", value: (c) => c.dirs.hooks },
  { name: "DIB_BLOCK_DEVICE_PARAMS_YAML", phases: "all", dib: "disk-image-create:324", value: (c) => blockDeviceParams(c.dirs) },
  { name: "DIB_ROOT_LABEL", phases: "all", dib: "disk-image-create:339 (ooo: its root filesystem's label)", value: () => ROOT_FS_LABEL },
  { name: "DIB_ROOT_FSTYPE", phases: "all", dib: "disk-image-create:343", value: () => "ext4" },
  { name: "DIB_MOUNTPOINTS", phases: "all", dib: "disk-image-create:347", value: () => "/" },
  { name: "TMP_MOUNT_PATH", phases: "all", dib: "common-functions create_base", value: (c) => c.dirs.root },
  { name: "TARGET_ROOT", phases: ["root.d", "cleanup.d"], dib: "common-functions create_base, img-functions finalise_base (`TARGET_ROOT=… run_d`)", value: (c) => c.dirs.root },
  { name: "IMAGE_BLOCK_DEVICE", phases: { from: "pre-finalise.d" }, dib: "disk-image-create:516 (ooo writes disks from the finished tree: no device, empty)", value: () => "" },
  { name: "IMAGE_BLOCK_DEVICES", phases: { from: "pre-finalise.d" }, dib: "disk-image-create:523 (empty, as above)", value: () => "" },
  { name: "HOME", phases: "target", dib: "img-functions run_in_target", value: () => "/root" },
  { name: "TMPDIR", phases: "target", dib: "img-functions run_in_target (env -u)", value: () => UNSET },
  { name: "VIRTUAL_ENV", phases: "target", dib: "img-functions run_in_target (env -u)", value: () => UNSET },
  ...["USER", "LOGNAME", "SUDO_USER"].map((name) => ({ name, phases: "target" as const, dib: "img-functions run_in_target (sudo -E as root)", value: () => "root" })),
  { name: "SHELL", phases: "target", dib: "img-functions run_in_target (sudo -E sets it when the caller has none)", value: (c) => given(c, "SHELL") ?? rootShell() },
  ...["SUDO_UID", "SUDO_GID"].map((name) => ({ name, phases: "target" as const, dib: "img-functions run_in_target (sudo -E as root)", value: () => "0" })),
  { name: "SOURCE_DATE_EPOCH", phases: "all", dib: "ooo's addition: reproducible builds (mmdebstrap, dpkg and others clamp times to it)", value: (c) => String(c.options.sourceDateEpoch) },
];

/** DIB writes this after root.d (disk-image-create:353): every later phase sources it. */
export const INSTALL_TYPE_FILE = "11-dib-install-type.bash";
export const installTypeFile = (caller: Record<string, string>) =>
  `export DIB_DEFAULT_INSTALLTYPE=\${DIB_DEFAULT_INSTALLTYPE:-"${caller.DIB_DEFAULT_INSTALLTYPE || "source"}"}\n`;

function sees(phases: Phases, phase: Phase, where: "host" | "target"): boolean {
  if (phases === "all") return true;
  if (phases === "host" || phases === "target") return phases === where;
  if ("from" in phases) return PHASE_NAMES.indexOf(phase) >= PHASE_NAMES.indexOf(phases.from);
  return phases.includes(phase);
}

/** The environment a hook of `phase` starts with (environment.d files are sourced on top by the hook runner). */
export function hookEnvironment(c: EnvContext, phase: Phase, where: "host" | "target"): Record<string, string> {
  const env = { ...c.caller };
  for (const e of DIB_EXPORTS) {
    if (!sees(e.phases, phase, where)) continue;
    const value = e.value(c);
    if (value === UNSET) delete env[e.name];
    else if (value !== undefined) env[e.name] = value;
  }
  return env;
}

/** `export | grep ' DIB_.*='` when disk-image-create starts: the caller's DIB_* and the two set before it. */
function dibEnv(c: EnvContext): string {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.caller)) if (k.startsWith("DIB_")) vars[k] = v;
  vars.DIB_PYTHON_EXEC = pythonExec(c.caller);
  vars.DIB_ARGS = c.options.args.join(" ");
  return Object.keys(vars)
    .sort()
    .map((k) => `declare -x ${k}="${vars[k]!.replace(/["\\$`]/g, "\\$&")}"`)
    .join("\n")
    .split("\n")
    .filter((line) => / DIB_.*=/.test(line))
    .join("\n");
}

function hostPath(path: string): string {
  let out = path;
  for (const dir of ["/sbin", "/usr/sbin", "/usr/local/sbin"]) if (!`:${out}`.includes(`:${dir}`)) out += `:${dir}`;
  return out;
}

/** -o as given (path included), without `.TYPE` when one type is built (disk-image-create:257). */
function imageName(options: BuildOptions): string {
  const only = options.types.length === 1 ? `.${options.types[0]}` : undefined;
  return only && options.output.endsWith(only) ? options.output.slice(0, -only.length) : options.output;
}

/** Where DIB keeps its block-device parameters; ooo writes the same keys there (writeBlockDeviceParams). */
const blockDeviceParams = (dirs: BuildDirs) => join(dirs.build, "block-device", "params.yaml");

function blockDeviceParamsFile(dirs: BuildDirs): { path: string; text: string } {
  const text = toYaml({
    config: join(dirs.build, "block-device", "config.yaml"),
    "image-dir": dirs.image,
    "root-fs-type": "ext4",
    "root-label": ROOT_FS_LABEL,
    "mount-base": join(dirs.build, "mnt"),
    "build-dir": dirs.build,
  });
  return { path: blockDeviceParams(dirs), text };
}

/**
 * DIB_IMAGE_SIZE as disk-image-create computes it after post-root.d, in
 * KiB: the root's size / 0.6 plus a 64 MiB ext4 journal (or --image-size,
 * or DIB_IMAGE_EXTRA_SIZE on top of the root), 525 MiB more for an EFI
 * partition, rounded up to 64 KiB.
 */
export function dibImageSizeKiB(rootKiB: number, env: Record<string, string | undefined>, elements: string[]): number {
  let size: number;
  if (env.DIB_IMAGE_SIZE) size = Math.trunc(Number(env.DIB_IMAGE_SIZE) * 1024 * 1024);
  else if (env.DIB_IMAGE_EXTRA_SIZE) size = Math.trunc(rootKiB + Number(env.DIB_IMAGE_EXTRA_SIZE) * 1024);
  else size = Math.trunc(rootKiB / 0.6);
  const journal = Number(env.DIB_JOURNAL_SIZE || 64);
  if ((env.DIB_ROOT_FSTYPE ?? "ext4") === "ext4" && !env.DIB_IMAGE_SIZE) size += journal * 1024;
  if (elements.some((e) => e.includes("block-device-efi"))) size += 525 * 1024;
  return size % 64 === 0 ? size : size + 64 - (size % 64);
}

/**
 * DIB's is the python running disk-image-create: Debian's, for Debian's DIB.
 * Not the first python3 on PATH (pyenv, a venv): it may lack diskimage_builder.
 */
const pythonExec = (caller: Record<string, string>) =>
  caller.DIB_PYTHON_EXEC || (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : (Bun.which("python3") ?? "python3"));

/**
 * The context of this build's hook environments; also makes what DIB makes
 * before the first hook and hooks may look for: the lock folder and the
 * block-device parameters file.
 */
export async function prepareEnvironment(options: BuildOptions, elements: Element[], elementsPath: string[], dirs: BuildDirs): Promise<EnvContext> {
  const { env: caller, withheld } = callerEnvironment(process.env, options.envKeep);
  if (withheld.length) log.info(`not passed to hooks (secret or ooo's own; --env-keep NAME passes one): ${withheld.join(" ")}`);
  const plain = plainElementPaths(elementsPath, elements, dirs);
  const context: EnvContext = { options, ...plain, dirs, caller, dibLib: await findDibLib(pythonExec(caller)) };
  const params = blockDeviceParamsFile(dirs);
  mkdirSync(dirname(params.path), { recursive: true });
  writeFileSync(params.path, params.text);
  mkdirSync(hookEnvironment(context, "root.d", "host").DIB_LOCKFILES!, { recursive: true });
  return context;
}

/** A path DIB's hooks can take unquoted; any other reaches them as `<work>/elements-path/N`, a link to it. */
export const HOOK_SAFE_PATH = /^[\w./+@%,:=-]+$/;

/**
 * DIB's hooks use ELEMENTS_PATH and element folders unquoted (package-installs'
 * `--path=$ELEMENTS_PATH`, `declare -A a=($(get_image_element_array))`), so
 * a folder whose path holds a blank or a shell character (a clone in
 * "~/my projects") would break them: hooks see such a folder through a link
 * in the build's work folder instead. Plain paths are passed as they are.
 */
function plainElementPaths(elementsPath: string[], elements: Element[], dirs: BuildDirs): { elementsPath: string[]; elements: Element[] } {
  const PLAIN = HOOK_SAFE_PATH;
  const links = new Map<string, string>();
  const linked = (path: string) => {
    if (PLAIN.test(path)) return path;
    let link = links.get(path);
    if (!link) {
      link = join(dirs.build, "elements-path", String(links.size));
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync(path, link);
      links.set(path, link);
    }
    return link;
  };
  return {
    elementsPath: elementsPath.map(linked),
    elements: elements.map((e) => (PLAIN.test(e.dir) ? e : { ...e, dir: join(linked(dirname(e.dir)), e.name) })),
  };
}

/** DIB's lib/ folder, found as disk-image-create finds it (importing diskimage_builder), if DIB is installed. */
async function findDibLib(python: string): Promise<string | undefined> {
  try {
    const out = await capture(python, ["-c", "import diskimage_builder.paths as p; print(p.get_path('lib'))"], { what: "looking for diskimage-builder" });
    const lib = out.trim();
    return existsSync(join(lib, "img-functions")) ? lib : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The caller's environment as hooks may see it: everything, as under DIB,
 * but ooo's own variables (OOO_*: store tokens, Swift keys, the build
 * namespace's markers), variables of the runtime ooo runs on, and anything
 * named like a secret (*_TOKEN, *_KEY, *_PASSWORD, *_PASSWD, *_SECRET) —
 * unless the user keeps it by name (--env-keep NAME).
 */
export function callerEnvironment(env: Record<string, string | undefined>, keep: readonly string[] = []): { env: Record<string, string>; withheld: string[] } {
  const out: Record<string, string> = {};
  const withheld: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (withheldName(k) && !keep.includes(k)) withheld.push(k);
    else out[k] = v;
  }
  return { env: out, withheld: withheld.sort() };
}

const RUNTIME = new Set(["NODE_OPTIONS", "BUN_INSTALL"]);
export const withheldName = (name: string) => name.startsWith("OOO_") || RUNTIME.has(name) || /(^|_)(TOKEN|KEY|PASSWORD|PASSWD|SECRET)$/i.test(name);

/**
 * The variables that can change what a hook does and so belong in cache
 * keys: DIB_* settings and a few others. Paths of this build's work folder
 * and of this machine are left out on purpose — they differ between runs.
 */
const NOT_CACHE_RELEVANT = new Set([
  "DIB_ENV", // all DIB_* again, paths included
  "DIB_ARGS",
  "DIB_IMAGE_CACHE",
  "DIB_LOCKFILES",
  "DIB_PYTHON_EXEC",
  "DIB_BLOCK_DEVICE_PARAMS_YAML",
  "DIB_DEBUG_TRACE",
  "DIB_NO_TMPFS",
  "DIB_MIN_TMPFS",
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

