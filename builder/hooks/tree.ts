import { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { log } from "../../lib/log.ts";
import type { Element } from "../elements/element.ts";
import { mergedSubdirs } from "../elements/element.ts";
import { PHASES, type Phase } from "../elements/phases.ts";
import { orderEnvironmentFiles, orderRunParts, runPartsRegex } from "../elements/run-parts.ts";
import { DuplicateHook } from "../errors.ts";
import { RUN_HOOK } from "./sandbox.ts";

export interface Hook {
  phase: Phase;
  name: string;
  element: string;
}

export interface HooksTree {
  dir: string;
  /** Hooks to run, per phase, in dib-run-parts order. */
  hooks: Map<Phase, Hook[]>;
  /** environment.d file names in source order. */
  environmentFiles: string[];
  /** "sub/name" of merged files (and "sub/name/" of folders, first owner) → element. */
  owner: Map<string, string>;
}

/**
 * Merge every element's folders into one tree ($TMP_HOOKS_PATH), as DIB's
 * generate_hooks does: each subfolder but tests/ and __pycache__ is merged,
 * dot files are skipped, folders merge, and the same file name in one folder
 * from two elements is an error. Inside the chroot the tree is mounted
 * read-only at /tmp/in_target.d, so hooks that look at `$(dirname $0)/..`
 * find their element's siblings (static/, bin/, …) as under DIB.
 */
export async function mergeHooks(elements: Element[], dir: string, env = process.env): Promise<HooksTree> {
  mkdirSync(dir, { recursive: true });
  const owner = new Map<string, string>(); // "sub/name" of regular files → element
  for (const element of elements) {
    for (const sub of mergedSubdirs(element.dir)) {
      const src = join(element.dir, sub);
      const entries = readdirSync(src).filter((n) => !n.startsWith(".")).sort();
      if (!entries.length) {
        mkdirSync(join(dir, sub), { recursive: true });
        continue;
      }
      for (const name of entries) {
        let isFile = false;
        try {
          isFile = statSync(join(src, name)).isFile();
        } catch {}
        const key = `${sub}/${name}`;
        const previous = owner.get(key);
        if (isFile && previous) throw new DuplicateHook(sub, name, [previous, element.name]);
        if (isFile) owner.set(key, element.name);
        else if (!owner.has(`${key}/`)) owner.set(`${key}/`, element.name); // a folder: first owner
      }
      mkdirSync(join(dir, sub), { recursive: true });
      // cp -a keeps modes, symlinks and owners as the element has them (DIB:
      // hooks copy static files with their modes), but for group and other
      // write: a checkout made under umask 002 (Debian's for users) has them,
      // one made under 022 not, and the image must not differ by that.
      await execa("cp", ["-a", "-t", join(dir, sub), ...entries.map((n) => join(src, n))]);
      const copied = entries.map((n) => join(dir, sub, n));
      await execa("find", [...copied, "!", "-type", "l", "-perm", "/022", "-exec", "chmod", "go-w", "{}", "+"]);
    }
    // DIB also copies top-level files (last one wins); hooks may read them.
    for (const name of readdirSync(element.dir).filter((n) => !n.startsWith("."))) {
      const p = join(element.dir, name);
      try {
        const st = statSync(p);
        if (!st.isFile()) continue;
        copyFileSync(p, join(dir, name));
        chmodSync(join(dir, name), st.mode & 0o7755);
      } catch {}
    }
  }

  mkdirSync(join(dir, ".ooo"), { recursive: true });
  copyFileSync(RUN_HOOK, join(dir, ".ooo", "run-hook"));
  enableInstallTypes(dir, owner, env);
  const hooks = listHooks(dir, owner, env, true);

  const envDir = join(dir, "environment.d");
  const environmentFiles = existsSync(envDir)
    ? orderEnvironmentFiles(readdirSync(envDir).filter((n) => statSync(join(envDir, n)).isFile()))
    : [];
  return { dir, hooks, environmentFiles, owner };
}

/** The runnable hooks of each phase folder, in dib-run-parts order. */
function listHooks(dir: string, owner: Map<string, string>, env: Record<string, string | undefined>, warn: boolean) {
  const regex = runPartsRegex(env);
  const hooks = new Map<Phase, Hook[]>();
  for (const { name: phase } of PHASES) {
    const phaseDir = join(dir, phase);
    if (!existsSync(phaseDir)) continue;
    const candidates: string[] = [];
    for (const name of readdirSync(phaseDir)) {
      const p = join(phaseDir, name);
      let file = false;
      try {
        file = statSync(p).isFile();
      } catch {}
      if (!file) continue;
      try {
        accessSync(p, constants.X_OK);
      } catch {
        if (warn) log.warn(`${phase}/${name} of element ${owner.get(`${phase}/${name}`) ?? "?"} is not executable and will not run`);
        continue;
      }
      if (!regex.test(name)) {
        if (warn)
          log.warn(`${phase}/${name} of element ${owner.get(`${phase}/${name}`) ?? "?"} will not run: its name does not match ${regex} (dib-run-parts rule)`);
        continue;
      }
      candidates.push(name);
    }
    hooks.set(
      phase,
      orderRunParts(candidates, regex).map((name) => ({ phase, name, element: owner.get(`${phase}/${name}`) ?? "?" })),
    );
  }
  return hooks;
}

/**
 * DIB's install-types (an element of DIB's base, run at extra-data.d/99):
 * `install.d/<prefix>-<type>-install/` folders hold an element's install.d
 * hooks per install type; the files of the folder for the chosen type —
 * DIB_INSTALLTYPE_<prefix, '-' as '_'>, else DIB_DEFAULT_INSTALLTYPE (source)
 * — are linked into install.d, overwriting (`ln -sf`). Done here, before the
 * hooks are listed, so that they run and count in the cache keys; DIB's own
 * install-types element, if used, then re-creates the same links.
 */
function enableInstallTypes(dir: string, owner: Map<string, string>, env: Record<string, string | undefined>) {
  const installDir = join(dir, "install.d");
  if (!existsSync(installDir)) return;
  const folders = readdirSync(installDir).filter((n) => /-install$/.test(n) && statSync(join(installDir, n)).isDirectory());
  if (!folders.length) return;
  const chosen: string[] = [];
  const specified = new Set<string>();
  for (const [k, v] of Object.entries(env).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!k.startsWith("DIB_INSTALLTYPE_") || v === undefined) continue;
    const prefix = k.slice("DIB_INSTALLTYPE_".length).replaceAll("_", "-");
    specified.add(prefix);
    if (folders.includes(`${prefix}-${v}-install`)) chosen.push(`${prefix}-${v}-install`);
  }
  const suffix = `-${env.DIB_DEFAULT_INSTALLTYPE || "source"}-install`;
  for (const f of folders.sort()) if (f.endsWith(suffix) && !specified.has(f.slice(0, -suffix.length))) chosen.push(f);
  for (const folder of chosen) {
    for (const name of readdirSync(join(installDir, folder)).filter((n) => !n.startsWith("."))) {
      const link = join(installDir, name);
      rmSync(link, { force: true });
      symlinkSync(`${folder}/${name}`, link);
      owner.set(`install.d/${name}`, owner.get(`install.d/${folder}/`) ?? "?");
    }
  }
}

/**
 * Hooks that extra-data.d hooks added to or removed from the tree since it
 * was listed (DIB runs whatever a phase folder holds when the phase starts;
 * ooo plans and keys every hook first). Empty when nothing changed.
 */
export function hooksChangedSince(tree: HooksTree, env: Record<string, string | undefined>): string[] {
  const now = listHooks(tree.dir, tree.owner, env, false);
  const changes: string[] = [];
  for (const { name: phase } of PHASES) {
    const before = new Set((tree.hooks.get(phase) ?? []).map((h) => h.name));
    const after = new Set((now.get(phase) ?? []).map((h) => h.name));
    for (const n of after) if (!before.has(n)) changes.push(`+${phase}/${n}`);
    for (const n of before) if (!after.has(n)) changes.push(`-${phase}/${n}`);
  }
  return changes;
}
