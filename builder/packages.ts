import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadPackageInstalls, type Element } from "./elements/element.ts";
import type { PackageInstallsFile } from "./elements/schema.ts";
import { InvalidElement } from "./errors.ts";

/**
 * package-installs, squashed like DIB's package-installs-squash: every
 * element's package-installs.yaml becomes, per phase, one list to install and
 * one to remove. The `package-installs` element's hooks (pre-install.d/10,
 * install.d/01, post-install.d/00; removals at 99/99/95, DIB's slots) install
 * each list in a single apt transaction.
 */
export type PackagePhase = "pre-install.d" | "install.d" | "post-install.d";
export type PackagePlan = Record<PackagePhase, { install: string[]; uninstall: string[] }>;

function archMatches(list: string, arch: string) {
  return list.split(",").map((s) => s.trim()).includes(arch);
}

function whenHolds(element: string, when: string | string[] | undefined, env: Record<string, string | undefined>) {
  if (when === undefined) return true;
  for (const statement of Array.isArray(when) ? when : [when]) {
    const m = /^(\w+)\s*(!=|=)\s*(.*)$/.exec(statement);
    if (!m) throw new InvalidElement(element, "package-installs.yaml", `malformed when: <${statement}>`);
    const [, name, op, value] = m;
    const actual = env[name!];
    if (actual === undefined)
      throw new InvalidElement(element, "package-installs.yaml", `when: the variable <${name}> is not set`);
    if ((op === "=") !== (actual === value)) return false;
  }
  return true;
}

export function squashPackages(
  elements: Element[],
  arch: string,
  env: Record<string, string | undefined>,
): PackagePlan {
  return squashFiles(elements.map((e) => ({ element: e.name, file: loadPackageInstalls(e) })), arch, env);
}

/**
 * The squash itself, on parsed files (DIB's collect_data): per package and
 * parameter map, skip it for another installtype, arch, python version or a
 * false `when`, then add it to its phase's install list, uninstall list, or
 * both (build-only). `env` is the hooks' environment with environment.d
 * sourced, as DIB's squash hook sees it.
 */
export function squashFiles(
  files: { element: string; file: PackageInstallsFile }[],
  arch: string,
  env: Record<string, string | undefined>,
): PackagePlan {
  const plan: PackagePlan = {
    "pre-install.d": { install: [], uninstall: [] },
    "install.d": { install: [], uninstall: [] },
    "post-install.d": { install: [], uninstall: [] },
  };
  const defaultType = env.DIB_DEFAULT_INSTALLTYPE ?? "source";
  for (const { element, file } of files) {
    const elementType = env[`DIB_INSTALLTYPE_${element.replaceAll("-", "_")}`] ?? defaultType;
    for (const [pkg, params] of Object.entries(file)) {
      for (const p of params) {
        if (p.installtype !== undefined && p.installtype !== elementType) continue;
        if (p.arch !== undefined && !archMatches(p.arch, arch)) continue;
        if (p["not-arch"] !== undefined && archMatches(p["not-arch"], arch)) continue;
        if (p.dib_python_version !== undefined && String(p.dib_python_version) !== (env.DIB_PYTHON_VERSION ?? "")) continue;
        if (!whenHolds(element, p.when, env)) continue;
        const buildOnly = "build-only" in p;
        const uninstall = "uninstall" in p;
        if (!uninstall || buildOnly) plan[p.phase].install.push(pkg);
        if (uninstall || buildOnly) plan[p.phase].uninstall.push(pkg);
      }
    }
  }
  for (const phase of Object.values(plan)) {
    phase.install = [...new Set(phase.install)].sort();
    phase.uninstall = [...new Set(phase.uninstall)].sort();
  }
  return plan;
}

/** Written into the hooks tree, where the package-installs hooks read it. */
export function writePackagePlan(plan: PackagePlan, hooksDir: string) {
  const dir = join(hooksDir, ".ooo", "packages");
  mkdirSync(dir, { recursive: true });
  for (const [phase, lists] of Object.entries(plan)) {
    writeFileSync(join(dir, `${phase}.install`), lists.install.map((p) => p + "\n").join(""));
    writeFileSync(join(dir, `${phase}.uninstall`), lists.uninstall.map((p) => p + "\n").join(""));
  }
  // DIB's squashed form, for elements that read it.
  const squashed: Record<string, Record<string, [string, string][]>> = {};
  for (const [phase, lists] of Object.entries(plan)) {
    squashed[phase] = {
      install: lists.install.map((p) => [p, "ooo"] as [string, string]),
      uninstall: lists.uninstall.map((p) => [p, "ooo"] as [string, string]),
    };
  }
  writeFileSync(join(hooksDir, ".ooo", "package-installs.json"), JSON.stringify(squashed, null, 2));
}
