import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { InvalidElement } from "../errors.ts";
import { ElementNameList, PackageInstalls, StatePaths, type PackageInstallsFile } from "./schema.ts";

/** One element: a folder in an ELEMENTS_PATH entry, in DIB's format. */
export interface Element {
  name: string;
  /** Resolved (realpath) directory. */
  dir: string;
  deps: Set<string>;
  provides: Set<string>;
}

/** Subfolders DIB never merges into the hooks tree. */
const NOT_MERGED = new Set(["tests", "__pycache__"]);

function readOptional(dir: string, file: string): string | undefined {
  const path = join(dir, file);
  return existsSync(path) ? readFileSync(path, "utf8") : undefined;
}

function parseFile<S extends z.ZodType>(element: string, file: string, schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const detail = r.error.issues
    .map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message))
    .join("; ");
  throw new InvalidElement(element, file, detail);
}

/** element-deps and element-provides only: all that resolution needs. */
export function loadElementHeader(name: string, dir: string): Element {
  return {
    name,
    dir,
    deps: parseFile(name, "element-deps", ElementNameList, readOptional(dir, "element-deps") ?? ""),
    provides: parseFile(name, "element-provides", ElementNameList, readOptional(dir, "element-provides") ?? ""),
  };
}

/** Folders of an element that DIB merges into the shared hooks tree (phases, bin, static, …). */
export function mergedSubdirs(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => !NOT_MERGED.has(f) && !f.startsWith("."))
    .filter((f) => {
      try {
        return statSync(join(dir, f)).isDirectory();
      } catch {
        return false; // a dangling symlink is not a folder
      }
    })
    .sort();
}

export function loadPackageInstalls(element: Element): PackageInstallsFile {
  const yamlText = readOptional(element.dir, "package-installs.yaml");
  const jsonText = readOptional(element.dir, "package-installs.json");
  const file = yamlText !== undefined ? "package-installs.yaml" : "package-installs.json";
  const text = yamlText ?? jsonText;
  if (text === undefined) return {};
  let value: unknown;
  try {
    value = file.endsWith(".yaml") ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new InvalidElement(element.name, file, `not valid ${file.endsWith(".yaml") ? "YAML" : "JSON"}: ${(e as Error).message.split("\n")[0]}`);
  }
  return parseFile(element.name, file, PackageInstalls, value);
}

export function loadStatePaths(element: Element): string[] {
  const text = readOptional(element.dir, "state-paths");
  return text === undefined ? [] : parseFile(element.name, "state-paths", StatePaths, text);
}
