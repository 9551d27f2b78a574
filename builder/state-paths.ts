import { existsSync, lstatSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadStatePaths, type Element } from "./elements/element.ts";
import { InvalidElement } from "./errors.ts";

/**
 * Elements declare precious paths in `state-paths` (ooo): absolute, one per
 * line. The builder gathers them into /etc/ooo/state-paths (which the
 * state-layout element's initramfs script reads to bind-mount each from the
 * state partition) and makes sure each exists in the read-only root, since
 * nothing can create a mount point on it at boot.
 */
export function collectStatePaths(elements: Element[]): string[] {
  const all = new Set<string>();
  for (const element of elements) for (const p of loadStatePaths(element)) all.add(p.replace(/\/+$/, ""));
  const sorted = [...all].sort();
  for (const p of sorted) {
    const nested = sorted.find((q) => q !== p && p.startsWith(q + "/"));
    if (nested) {
      const owner = elements.find((e) => loadStatePaths(e).includes(p))?.name ?? "?";
      throw new InvalidElement(owner, "state-paths", `${p} lies inside another state path, ${nested}`);
    }
  }
  return sorted;
}

export function writeStatePaths(root: string, paths: string[]) {
  mkdirSync(join(root, "etc/ooo"), { recursive: true });
  writeFileSync(join(root, "etc/ooo/state-paths"), paths.map((p) => p + "\n").join(""));
  for (const p of paths) {
    const inRoot = join(root, p);
    let exists = false;
    try {
      lstatSync(inRoot);
      exists = true;
    } catch {}
    if (!exists) mkdirSync(inRoot, { recursive: true, mode: 0o755 });
  }
  if (!existsSync(join(root, "mnt/state"))) mkdirSync(join(root, "mnt/state"), { recursive: true });
}
