import { accessSync, constants, copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
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
      }
      mkdirSync(join(dir, sub), { recursive: true });
      // cp -a keeps modes, symlinks and owners exactly as the element has them.
      await execa("cp", ["-a", "-t", join(dir, sub), ...entries.map((n) => join(src, n))]);
    }
    // DIB also copies top-level files (last one wins); hooks may read them.
    for (const name of readdirSync(element.dir).filter((n) => !n.startsWith("."))) {
      const p = join(element.dir, name);
      try {
        if (statSync(p).isFile()) copyFileSync(p, join(dir, name));
      } catch {}
    }
  }

  mkdirSync(join(dir, ".ooo"), { recursive: true });
  copyFileSync(RUN_HOOK, join(dir, ".ooo", "run-hook"));

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
        log.warn(`${phase}/${name} of element ${owner.get(`${phase}/${name}`) ?? "?"} is not executable and will not run`);
        continue;
      }
      if (!regex.test(name)) {
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

  const envDir = join(dir, "environment.d");
  const environmentFiles = existsSync(envDir)
    ? orderEnvironmentFiles(readdirSync(envDir).filter((n) => statSync(join(envDir, n)).isFile()))
    : [];
  return { dir, hooks, environmentFiles };
}
