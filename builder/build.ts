import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { log } from "../lib/log.ts";
import { capture } from "../lib/run.ts";
import { elementContentHash } from "./elements/content-hash.ts";
import { chainKey, LayerCache } from "./cache.ts";
import { discoverElements, elementsPath } from "./elements/discover.ts";
import type { Element } from "./elements/element.ts";
import { PHASE_NAMES, PHASES, type Phase } from "./elements/phases.ts";
import { dibInputElements, expandDependencies } from "./elements/resolve.ts";
import {
  type BuildDirs,
  cacheRelevantEnvironment,
  dibImageSizeKiB,
  hookEnvironment,
  INSTALL_TYPE_FILE,
  installTypeFile,
  prepareEnvironment,
  sourcedEnvironment,
} from "./environment.ts";
import { orderEnvironmentFiles } from "./elements/run-parts.ts";
import { EmptyRoot, HooksChanged, NotRoot } from "./errors.ts";
import { finalizeRoot } from "./finalize.ts";
import { runHook } from "./hooks/sandbox.ts";
import { hooksChangedSince, mergeHooks, type Hook } from "./hooks/tree.ts";
import type { BuildOptions } from "./options.ts";
import { resolveOutputTypes } from "./outputs/index.ts";
import { canonical, KERNEL_CMDLINE, layout } from "./outputs/steps.ts";
import type { Artifact } from "./outputs/types.ts";
import { OutputWork } from "./outputs/work.ts";
import { buildManifest } from "./manifest.ts";
import { collectStatePaths, writeStatePaths } from "./state-paths.ts";
import { uuidFor } from "./disk/uuid.ts";
import { publishAtomically } from "../lib/atomic.ts";
import type { Manifest } from "../wire/manifest.ts";
import { squashPackages, writePackagePlan } from "./packages.ts";

/** Bumped when a change in ooo makes old cached layers wrong. */
const LAYER_FORMAT = "ooo-layer-v2";

/** Re-running hooks that took this long is worth a snapshot. */
const SNAPSHOT_AFTER_SECONDS = 5;

export interface BuildResult {
  manifest: Manifest;
  manifestPath: string;
  elements: { name: string; dir: string; sha256: string }[];
  artifacts: Artifact[];
  hooks: { phase: string; name: string; element: string; seconds: number; cached: boolean }[];
  seconds: number;
  root: string;
  /** Key of the last hook: identifies the build's inputs. */
  inputsKey: string;
}

interface PlannedHook extends Hook {
  where: "host" | "target";
  key: string;
}

export interface BuildContext {
  options: BuildOptions;
  /** The work folder (a tmpfs inside the build namespace, or a folder on disk). */
  workDir: string;
  /** Extra steps on the finished root before outputs are written (state layout, …). */
  afterRoot?: (root: string, elements: Element[]) => Promise<void>;
}

function whereOf(phase: Phase) {
  return PHASES.find((p) => p.name === phase)!.where;
}

/** The elements for a build: `base` first unless -n, then the user's, expanded like DIB. */
export function resolveBuildElements(options: BuildOptions): { elements: Element[]; path: string[] } {
  const path = elementsPath(options.elementsPath);
  const all = discoverElements(path);
  const requested = dibInputElements(options.elements, options);
  return { elements: expandDependencies([...new Set(requested)], all), path };
}

export async function build(ctx: BuildContext): Promise<BuildResult> {
  const { options } = ctx;
  if (process.getuid?.() !== 0) throw new NotRoot();
  const t0 = performance.now();
  const outputTypes = resolveOutputTypes(options.types);

  const { elements, path } = await log.step("resolve elements", async () => {
    const r = resolveBuildElements(options);
    log.info(`elements: ${r.elements.map((e) => e.name).join(" ")}`);
    return r;
  });
  const elementHash = new Map(elements.map((e) => [e.name, elementContentHash(e)]));
  const statePaths = collectStatePaths(elements); // checked before any hook runs

  const dirs: BuildDirs = {
    build: ctx.workDir,
    root: join(ctx.workDir, "root"),
    hooks: join(ctx.workDir, "hooks"),
    image: join(ctx.workDir, "image"),
  };
  for (const d of [dirs.root, dirs.hooks, dirs.image]) mkdirSync(d, { recursive: true });
  chmodSync(dirs.root, 0o755);

  const envContext = await prepareEnvironment(options, elements, path, dirs);
  const { caller } = envContext;
  const envFor = (phase: Phase) => hookEnvironment(envContext, phase, whereOf(phase));
  const env = envFor("extra-data.d");
  const tree = await log.step("merge element hooks", () => mergeHooks(elements, dirs.hooks, env));
  mkdirSync(join(dirs.hooks, "environment.d"), { recursive: true });
  writeFileSync(join(dirs.hooks, "environment.d", INSTALL_TYPE_FILE), installTypeFile(caller));
  tree.environmentFiles = orderEnvironmentFiles([...tree.environmentFiles, INSTALL_TYPE_FILE]);
  const envFiles = tree.environmentFiles.map((f) => join(dirs.hooks, "environment.d", f));
  const packages = squashPackages(elements, options.arch, await sourcedEnvironment(env, envFiles));
  packages["install.d"].install = [...new Set([...packages["install.d"].install, ...options.packages])].sort();
  writePackagePlan(packages, dirs.hooks);

  // Keys. Every hook sees the settings and environment.d: they start the chain.
  // root.d hooks build the base root from those and their own element. Every
  // later hook may read any element's files through the hooks tree (static/,
  // bin/, helpers): all elements' data (files that are not hooks) joins the
  // chain after root.d, so a hookless element's change is never served from a
  // stale layer, and a shared base root stays cached whatever is built on it.
  // Each hook then adds its own element. The package lists are data for the
  // package-installs hooks only: adding a package must not invalidate the
  // hooks before them.
  const envFilesHash = createHash("sha256");
  for (const f of tree.environmentFiles) envFilesHash.update(f + "\0" + readFileSync(join(dirs.hooks, "environment.d", f)));
  const packagesHash = createHash("sha256").update(JSON.stringify(packages)).digest("hex");
  const inputsOf = (element: string) =>
    element === "package-installs" ? chainKey(elementHash.get(element) ?? "", packagesHash) : (elementHash.get(element) ?? "");
  const notData = new Map<string, Set<string>>();
  for (const e of elements) notData.set(e.name, new Set(["package-installs.yaml", "package-installs.json"]));
  for (const hooks of tree.hooks.values()) for (const h of hooks) notData.get(h.element)?.add(`${h.phase}/${h.name}`);
  const elementData = elements.map((e) => `${e.name}=${elementContentHash(e, notData.get(e.name))}`);
  let key = chainKey(LAYER_FORMAT, cacheRelevantEnvironment(env), envFilesHash.digest("hex"));
  let dataInKey = false;
  const addData = () => {
    key = chainKey(key, "element data", ...elementData);
    dataInKey = true;
  };
  const plan: PlannedHook[] = [];
  for (const { name: phase } of PHASES) {
    for (const hook of tree.hooks.get(phase) ?? []) {
      if (!dataInKey && phase !== "root.d") addData();
      key = chainKey(key, phase, hook.name, hook.element, inputsOf(hook.element));
      plan.push({ ...hook, where: whereOf(phase), key });
    }
  }
  if (!dataInKey) addData();

  const cache = new LayerCache(options.imageCache);
  let start = 0;
  if (!options.noCache) {
    for (let i = plan.length - 1; i >= 0; i--) {
      if (cache.has(plan[i]!.key)) {
        start = i + 1;
        break;
      }
    }
  }

  const timings: BuildResult["hooks"] = plan.slice(0, start).map((h) => ({
    phase: h.phase,
    name: h.name,
    element: h.element,
    seconds: 0,
    cached: true,
  }));
  if (start > 0) {
    const at = plan[start - 1]!;
    await log.step(`restore cached root after ${at.phase}/${at.name} (${at.key.slice(0, 12)})`, () =>
      cache.restore(at.key, ctx.workDir, ["root"]),
    );
    // extra-data.d writes into the hooks tree, which is not cached: run it again.
    for (const hook of plan.slice(0, start).filter((h) => h.phase === "extra-data.d")) await runOne(hook);
  }

  let uncachedSeconds = 0;
  let rootChecked = start > 0;
  for (let i = start; i < plan.length; i++) {
    const hook = plan[i]!;
    if (!rootChecked && hook.phase !== "root.d") {
      checkRootDeployed(dirs.root);
      rootChecked = true;
    }
    const seconds = await runOne(hook);
    timings.push({ phase: hook.phase, name: hook.name, element: hook.element, seconds, cached: false });
    uncachedSeconds += seconds;
    if (uncachedSeconds >= SNAPSHOT_AFTER_SECONDS && hook.phase !== "cleanup.d") {
      await log.step(`save layer after ${hook.phase}/${hook.name}`, () => cache.save(hook.key, ctx.workDir, ["root"]));
      uncachedSeconds = 0;
    }
  }
  checkRootDeployed(dirs.root);
  finalizeRoot(dirs.root);

  if (statePaths.length || elements.some((e) => e.name === "state-layout")) writeStatePaths(dirs.root, statePaths);
  if (ctx.afterRoot) await ctx.afterRoot(dirs.root, elements);

  const base = resolve(options.output);
  mkdirSync(dirname(base), { recursive: true });
  const work = new OutputWork(options, dirs.root, dirs.image, base, dirs.hooks);
  const c = await canonical(work);
  for (const type of outputTypes) await log.step(`write ${type.name}`, () => type.produce(work));
  const diskMade = options.types.some((t) => t === "raw" || t === "qcow2");
  const disk = diskMade ? await layout(work) : undefined;

  const phaseSeconds: Record<string, number> = {};
  for (const h of timings) phaseSeconds[h.phase] = Number(((phaseSeconds[h.phase] ?? 0) + h.seconds).toFixed(3));
  const elementList = elements.map((e) => ({ name: e.name, dir: e.dir, sha256: elementHash.get(e.name)! }));
  const manifest = buildManifest({
    options,
    digest: c.digest,
    rootBytes: c.size,
    root: dirs.root,
    elements: elementList,
    statePaths,
    artifacts: work.artifacts,
    layout: disk,
    boot: disk
      ? {
          kernelCmdline: KERNEL_CMDLINE,
          rootFsType: "ext4",
          partUuids: Object.fromEntries(disk.partitions.map((p) => [p.name, uuidFor(c.digest, `part-${p.name}`)])),
        }
      : undefined,
    phaseSeconds,
    totalSeconds: (performance.now() - t0) / 1000,
  });
  const manifestPath = `${base}.manifest.json`;
  await publishAtomically(manifestPath, async (t) => void (await Bun.write(t, JSON.stringify(manifest, null, 2) + "\n")));

  return {
    manifest,
    manifestPath,
    elements: elementList,
    artifacts: work.artifacts,
    hooks: timings,
    seconds: (performance.now() - t0) / 1000,
    root: dirs.root,
    inputsKey: key,
  };

  async function runOne(hook: PlannedHook): Promise<number> {
    const t = performance.now();
    if (envContext.imageSizeKiB === undefined && PHASE_NAMES.indexOf(hook.phase) >= PHASE_NAMES.indexOf("block-device.d"))
      envContext.imageSizeKiB = dibImageSizeKiB(await diskUsageKiB(dirs.root), { ...caller, DIB_IMAGE_SIZE: options.imageSize?.toString() ?? caller.DIB_IMAGE_SIZE }, elements.map((e) => e.name));
    // DIB writes the install-type file after root.d: root.d hooks do not source it.
    const envNames = hook.phase === "root.d" ? tree.environmentFiles.filter((f) => f !== INSTALL_TYPE_FILE) : tree.environmentFiles;
    await log.step(`${hook.phase}/${hook.name} (${hook.element})`, () =>
      runHook({
        element: hook.element,
        phase: hook.phase,
        name: hook.name,
        where: hook.where,
        targetRoot: dirs.root,
        hooksDir: dirs.hooks,
        aptArchives: aptArchivesDir(options.imageCache),
        envFiles: envNames.map((f) => (hook.where === "target" ? `/tmp/in_target.d/environment.d/${f}` : join(dirs.hooks, "environment.d", f))),
        env: envFor(hook.phase),
        timeoutSeconds: options.hookTimeout,
      }),
    );
    if (hook.phase === "extra-data.d") {
      const changed = hooksChangedSince(tree, env);
      if (changed.length) throw new HooksChanged(hook.element, `${hook.phase}/${hook.name}`, changed);
    }
    return (performance.now() - t) / 1000;
  }
}

/** What `du -a -c -x` totals for the root, in KiB (DIB sizes its disk from it). */
async function diskUsageKiB(root: string): Promise<number> {
  const out = await capture("du", ["-s", "-x", "-k", root], { what: "measuring the root (du)" });
  return Number(out.split("\t")[0]);
}

function aptArchivesDir(imageCache: string) {
  const dir = join(imageCache, "ooo-apt-archives");
  mkdirSync(join(dir, "partial"), { recursive: true });
  return dir;
}

/** DIB: "Failed to deploy the root element." when root.d left an empty root. */
function checkRootDeployed(root: string) {
  if (!existsSync(root) || readdirSync(root).length === 0)
    throw new EmptyRoot();
}
