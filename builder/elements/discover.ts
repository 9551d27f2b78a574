import { readdirSync, realpathSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { log } from "../../lib/log.ts";
import { InvalidElementDir } from "../errors.ts";
import { loadElementHeader, type Element } from "./element.ts";

/** The elements ooo ships; always searched last, as DIB appends its own. */
export const BUILTIN_ELEMENTS = resolve(import.meta.dir, "../../elements");

/**
 * The search path: user entries first (flag, then ELEMENTS_PATH), ooo's own
 * elements last. Empty entries are dropped; duplicates keep their first place.
 */
export function elementsPath(userPaths: string[] = [], env = process.env): string[] {
  const fromEnv = (env.ELEMENTS_PATH ?? "").split(":");
  const all = [...userPaths.flatMap((p) => p.split(":")), ...fromEnv, BUILTIN_ELEMENTS]
    .filter(Boolean)
    .map((p) => resolve(p));
  return [...new Set(all)];
}

/**
 * Every element on the path, by name. Like DIB: an element is any folder
 * directly in a path entry (symlinks followed), named by the basename of its
 * real path; the earliest entry wins and replaces the whole element. DIB scans
 * the entries from last to first, so a bad entry late in the path is reported
 * before one early in it.
 */
export function discoverElements(paths: string[]): Map<string, Element> {
  const all = new Map<string, Element>();
  for (const entry of [...paths].reverse()) {
    let isDir = false;
    try {
      isDir = statSync(entry).isDirectory();
    } catch {}
    if (!isDir) throw new InvalidElementDir(entry);
    for (const child of readdirSync(entry).sort()) {
      const full = join(entry, child);
      let real: string;
      try {
        if (!statSync(full).isDirectory()) continue;
        real = realpathSync(full);
      } catch {
        continue;
      }
      const name = basename(real);
      const previous = all.get(name);
      if (previous && previous.dir !== real) log.info(`Element <${real}> overrides <${previous.dir}>`);
      all.set(name, loadElementHeader(name, real));
    }
  }
  return all;
}
