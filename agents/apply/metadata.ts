import { existsSync, readFileSync } from "node:fs";
import { log } from "../../lib/log.ts";
import { MetadataError, SubhashError } from "../errors.ts";
import { parseJson } from "../pyjson/parse.ts";
import { deepCopy, isDict, isList, type PyDict, type PyValue } from "../pyjson/value.ts";

/** Read before the given files, always (os-apply-config's --fallback-metadata default). */
export const FALLBACK_METADATA = [
  "/var/cache/heat-cfntools/last_metadata",
  "/var/lib/heat-cfntools/cfn-init-data",
  "/var/lib/cloud/data/cfn-init-data",
];

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * os-apply-config's metadata: the fallback files, then the given ones, each
 * skipped if missing; a file that is not JSON stops everything; top levels
 * that are not objects, or are empty, are ignored; the rest deep-merged, the
 * later file winning.
 */
export function collectMetadata(files: string[], fallback: string[] = []): PyDict {
  let merged: PyDict = new Map();
  for (const file of [...fallback, ...files].filter(Boolean)) {
    if (!existsSync(file)) continue;
    let text: string;
    try {
      text = utf8.decode(readFileSync(file));
    } catch (e) {
      if (e instanceof TypeError) throw new MetadataError(file, "Could not parse metadata file");
      throw new MetadataError(file, `Could not open for reading (${(e as Error).message})`);
    }
    let value: PyValue;
    try {
      value = parseJson(text);
    } catch {
      throw new MetadataError(file, "Could not parse metadata file");
    }
    if (isDict(value) && value.size > 0) merged = deepMerge(merged, value) as PyDict;
  }
  return merged;
}

/** Dicts merge key by key; anything else (lists, scalars, null) replaces. */
export function deepMerge(a: PyValue, b: PyValue): PyValue {
  if (!isDict(b)) return b;
  const out = deepCopy(a) as PyDict;
  for (const [k, v] of b) {
    const old = out.get(k);
    out.set(k, old !== undefined && isDict(old) ? deepMerge(old, v) : deepCopy(v));
  }
  return out;
}

/** `--subhash a.b`: render against metadata.a.b, which must be a hash. */
export function subhash(metadata: PyDict, keys: string | undefined): PyDict {
  if (!keys) return metadata;
  let h = metadata;
  for (const k of keys.split(".")) {
    const next = h.get(k);
    if (next === undefined || !isDict(next)) throw new SubhashError(keys);
    h = next;
  }
  return h;
}

/** The metadata this run applied: OS_CONFIG_FILES, else os-collect-config's os_config_files.json. */
export function appliedMetadata(env = process.env): PyDict {
  let files: string[] = [];
  if (env.OS_CONFIG_FILES !== undefined) files = env.OS_CONFIG_FILES.split(":");
  else {
    const list = env.OS_CONFIG_FILES_PATH ?? "/var/lib/os-collect-config/os_config_files.json";
    try {
      if (existsSync(list)) {
        const v = parseJson(readFileSync(list, "utf8"));
        if (isList(v)) files = v.map(String);
      }
    } catch {
      files = [];
    }
  }
  try {
    return collectMetadata(files);
  } catch (e) {
    log.warn(`cannot read the applied metadata: ${(e as Error).message}`);
    return new Map();
  }
}
