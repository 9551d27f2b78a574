import { COLLECTORS } from "../collectors/index.ts";
import { settingKey, type Output } from "../collectors/types.ts";
import { isDict, type PyValue } from "../pyjson/value.ts";
import type { CollectConfig } from "./config.ts";

/**
 * A new node learns where its metadata service is from its config drive:
 * the drive's `os-collect-config` key (`{"heat": {"metadata_url": …, "node":
 * …, "token": …}}`), which os-apply-config renders into
 * /etc/os-collect-config.conf. The original then needs two configuration
 * runs on first boot: one with the drive's data alone (it renders the
 * file), a re-exec, a poll of the service, and the real one. Here, a
 * listed collector that the config files leave unconfigured takes its
 * settings from that key at once, so the same poll reaches the service and
 * the node is configured in one run. The file still gets rendered and read
 * on the reload that follows; settings from a config file or the command
 * line always win over the collected ones.
 */
export function bootstrapGroups(config: CollectConfig, outputs: Output[]): { config: CollectConfig; configured: string[] } | undefined {
  const wanted = collectedSettings(outputs);
  if (!wanted) return undefined;
  const groups = new Map(config.groups);
  const configured: string[] = [];
  for (const name of config.settings.collectors) {
    const collector = COLLECTORS.get(name);
    const given = wanted.get(name);
    if (!collector || !isDict(given) || Object.keys(config.groups.get(name) ?? {}).length > 0) continue;
    const known = new Set(collector.options.map(settingKey));
    const settings: Record<string, string[]> = {};
    for (const [key, value] of given) {
      const text = scalarText(value);
      if (known.has(key) && text !== undefined) settings[key] = [text];
    }
    if (Object.keys(settings).length === 0) continue;
    groups.set(name, settings);
    configured.push(name);
  }
  return configured.length ? { config: { ...config, groups }, configured } : undefined;
}

/** The `os-collect-config` key as os-apply-config would see it: later outputs win. */
function collectedSettings(outputs: Output[]): Map<string, PyValue> | undefined {
  let found: Map<string, PyValue> | undefined;
  for (const [, content] of outputs) {
    const value = isDict(content) ? content.get("os-collect-config") : undefined;
    if (isDict(value)) found = new Map([...(found ?? []), ...value]);
  }
  return found;
}

/** A setting as the template renders it (`{{metadata_url}}`); lists and dicts are no single setting. */
function scalarText(value: PyValue): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return value ? "True" : "False";
  return undefined;
}
