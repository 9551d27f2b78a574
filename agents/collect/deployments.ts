import { log } from "../../lib/log.ts";
import type { Output } from "../collectors/types.ts";
import { isDict, isList, type PyValue } from "../pyjson/value.ts";

const SPLIT_GROUPS = new Set(["os-apply-config", "Heat::Ungrouped"]);

/**
 * An output name becomes CACHEDIR/NAME.json: a name with a slash (or `.`,
 * `..`, empty) would put a root-owned file elsewhere. The original took
 * deployment names as they came.
 */
export function isSafeOutputName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\0");
}

/**
 * Heat-style software deployments split out of a source's content, as
 * os-collect-config's merger does: the whole content comes first, under the
 * collector's name; then, for every deployment key found at the top level,
 * each item of group `os-apply-config` or `Heat::Ungrouped` (the default)
 * becomes its own output named after the deployment, holding its `config`.
 * Other groups (script, puppet, …) are left to heat-config hooks. Items that
 * are not objects or lack a name are skipped with a warning (the original
 * crashed on some of them).
 */
export function splitDeployments(collector: string, content: PyValue, deploymentKeys: string[]): Output[] {
  const outputs: Output[] = [[collector, content]];
  if (!isDict(content)) return outputs;
  for (const key of deploymentKeys) {
    if (!content.has(key)) continue;
    const deployments = content.get(key)!;
    if (!isList(deployments)) {
      log.warn(`Deployment-key ${key} was found but does not contain a list.`);
      continue;
    }
    for (const d of deployments) {
      if (!isDict(d) || !d.has("name")) {
        log.warn(`No name found for a deployment under ${key}.`);
        continue;
      }
      const group = d.get("group") ?? "Heat::Ungrouped";
      if (typeof group !== "string" || !SPLIT_GROUPS.has(group)) continue;
      if (!d.has("config")) {
        log.warn(`Deployment ${String(d.get("name"))} under ${key} has no config.`);
        continue;
      }
      const name = String(d.get("name"));
      if (!isSafeOutputName(name)) {
        log.warn(`Deployment name ${JSON.stringify(name)} under ${key} cannot be a cache file name; skipped.`);
        continue;
      }
      outputs.push([name, d.get("config")!]);
    }
  }
  return outputs;
}
