import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The kernel modules a ramdisk carries: those its elements list (one name a
 * line in ramdisk-modules.d/ files), with everything modules.dep says they
 * need and the modules their soft dependencies name (ext4 asks for crc32c
 * that way: the crypto API loads it by alias, which only works once it is
 * loaded). Names compare as modprobe compares them: '-' and '_' alike.
 * Read from the root's own index (depmod's files), never from the host.
 */
export const modName = (s: string) => s.replaceAll("-", "_");
const nameOfPath = (p: string) => modName(p.slice(p.lastIndexOf("/") + 1).replace(/\.ko(\.(xz|zst|gz))?$/, ""));

export interface ModuleIndex {
  /** Module name → its file (relative to the modules folder) and the files it needs. */
  modules: Map<string, { path: string; deps: string[] }>;
  builtin: Set<string>;
  softdeps: Map<string, { pre: string[]; post: string[] }>;
  /** Exact aliases only (a soft dependency names a module or an alias such as crc32c). */
  aliases: Map<string, string[]>;
  /** Modules that drive PCI devices (a `pci:` alias): /init loads them by the devices present. */
  pciDrivers: Set<string>;
}

export function parseModuleIndex(files: { dep: string; builtin?: string; softdep?: string; alias?: string }): ModuleIndex {
  const modules = new Map<string, { path: string; deps: string[] }>();
  for (const line of files.dep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    modules.set(nameOfPath(path), { path, deps: line.slice(colon + 1).trim().split(/\s+/).filter(Boolean) });
  }
  const builtin = new Set((files.builtin ?? "").split("\n").filter(Boolean).map(nameOfPath));
  const softdeps = new Map<string, { pre: string[]; post: string[] }>();
  for (const line of (files.softdep ?? "").split("\n")) {
    const words = line.trim().split(/\s+/);
    if (words[0] !== "softdep" || !words[1]) continue;
    const entry = softdeps.get(modName(words[1])) ?? { pre: [], post: [] };
    let list: string[] | undefined;
    for (const w of words.slice(2)) {
      if (w === "pre:") list = entry.pre;
      else if (w === "post:") list = entry.post;
      else list?.push(modName(w));
    }
    softdeps.set(modName(words[1]), entry);
  }
  const aliases = new Map<string, string[]>();
  const pciDrivers = new Set<string>();
  for (const line of (files.alias ?? "").split("\n")) {
    const [kw, alias, target] = line.trim().split(/\s+/);
    if (kw === "alias" && alias?.startsWith("pci:") && target) pciDrivers.add(modName(target));
    if (kw !== "alias" || !alias || !target || /[*?[]/.test(alias)) continue;
    aliases.set(modName(alias), [...(aliases.get(modName(alias)) ?? []), modName(target)]);
  }
  return { modules, builtin, softdeps, aliases, pciDrivers };
}

export function readModuleIndex(modulesDir: string): ModuleIndex {
  const read = (f: string) => (existsSync(join(modulesDir, f)) ? readFileSync(join(modulesDir, f), "utf8") : undefined);
  const dep = read("modules.dep");
  if (dep === undefined) throw new Error(`${modulesDir}/modules.dep is missing (depmod never ran in the root)`);
  return parseModuleIndex({ dep, builtin: read("modules.builtin"), softdep: read("modules.softdep"), alias: read("modules.alias") });
}

export interface ModuleSelection {
  /** What the ramdisk may load, in order: each module after the ones its soft dependencies put first. */
  load: string[];
  /**
   * Of those, what /init loads by name (file systems, virtio, disks: what
   * no device present at /init asks for yet), in the same order; the PCI
   * drivers among `load` it loads only for the devices the machine has.
   */
  byName: string[];
  /** The PCI drivers among `load`. */
  pci: string[];
  /** Module files to copy (relative to the modules folder), sorted. */
  files: string[];
  /** Listed, but built into this kernel: nothing to load. */
  builtin: string[];
  /** Listed, but this kernel has no such module. */
  missing: string[];
}

export function selectModules(index: ModuleIndex, wanted: string[]): ModuleSelection {
  const load: string[] = [];
  const files = new Set<string>();
  const builtin: string[] = [];
  const missing: string[] = [];
  const seen = new Set<string>();
  const byPath = new Map([...index.modules].map(([name, m]) => [m.path, name]));

  // A soft dependency may name an alias: every module behind it comes (crc32c: generic and the CPU's).
  const resolve = (name: string) => (index.modules.has(name) || index.builtin.has(name) ? [name] : (index.aliases.get(name) ?? [name]));

  const add = (name: string, listed: boolean) => {
    if (seen.has(name)) return;
    seen.add(name);
    const module = index.modules.get(name);
    if (!module) {
      if (listed) (index.builtin.has(name) ? builtin : missing).push(name);
      return;
    }
    const soft = index.softdeps.get(name);
    for (const pre of soft?.pre ?? []) for (const m of resolve(pre)) add(m, false);
    files.add(module.path);
    for (const dep of module.deps) {
      files.add(dep);
      const depName = byPath.get(dep);
      if (depName) for (const s of index.softdeps.get(depName)?.pre ?? []) for (const m of resolve(s)) add(m, false);
    }
    load.push(name);
    for (const post of soft?.post ?? []) for (const m of resolve(post)) add(m, false);
  };
  for (const name of wanted) add(modName(name), true);
  return { load, byName: load.filter((m) => !index.pciDrivers.has(m)), pci: load.filter((m) => index.pciDrivers.has(m)), files: [...files].sort(), builtin, missing };
}

/** depmod's index files cut down to the modules a ramdisk carries, so that its modprobe finds exactly those. */
export function filteredIndex(modulesDir: string, files: string[]): Record<string, string> {
  const keep = new Set(files);
  const names = new Set(files.map(nameOfPath));
  const read = (f: string) => (existsSync(join(modulesDir, f)) ? readFileSync(join(modulesDir, f), "utf8") : "");
  const lines = (text: string, ok: (line: string) => boolean) =>
    text
      .split("\n")
      .filter((l) => l && ok(l))
      .join("\n") + "\n";
  return {
    "modules.dep": lines(read("modules.dep"), (l) => keep.has(l.slice(0, l.indexOf(":")))),
    "modules.order": lines(read("modules.order"), (l) => keep.has(l.trim())),
    "modules.alias": lines(read("modules.alias"), (l) => /^alias\s/.test(l) && names.has(modName(l.trim().split(/\s+/)[2] ?? ""))),
    "modules.softdep": lines(read("modules.softdep"), (l) => /^softdep\s/.test(l) && names.has(modName(l.trim().split(/\s+/)[1] ?? ""))),
    "modules.builtin": read("modules.builtin"),
  };
}
