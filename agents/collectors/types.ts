import type { PyValue } from "../pyjson/value.ts";

/**
 * One metadata source of os-collect-config. Each collector is one file in
 * this folder, registered in index.ts; its settings come from its own
 * section of the config file (`[heat]`) or `--GROUP-OPTION` flags.
 */
export interface CollectorOption {
  /** Dashed name: `metadata-url` is `--heat-metadata-url` and `metadata_url =` in [heat]. */
  name: string;
  /** value: the last one given wins · append: every value, in order. */
  kind: "value" | "append";
  help: string;
}

/** What collect() produced: output name (the cache file's NAME.json) and its content. */
export type Output = [name: string, content: PyValue];

/** The option's key among a collector's settings (`metadata-url` → `metadata_url`), as in its config section. */
export const settingKey = (option: CollectorOption) => option.name.replaceAll("-", "_");

export interface CollectContext {
  /** This collector's settings: config-file key (underscored) → values, in order. */
  settings: Record<string, string[]>;
  /** The cache folder (ec2 reads its own cache from it). */
  cachedir: string;
  /** Keys whose lists are split into one output per deployment. */
  deploymentKeys: string[];
  /** Aborted when the collector runs out of time or the agent stops. */
  signal: AbortSignal;
  /** Kept from one poll to the next (conditional-request validators, …). */
  memo: Record<string, unknown>;
}

export interface Collector {
  name: string;
  description: string;
  options: CollectorOption[];
  /** Seconds before the poll gives up on this source (its `timeout` setting, else 10). */
  timeoutSeconds(settings: Record<string, string[]>): number;
  /** Outputs, in precedence order. Throws SourceNotConfigured or SourceNotAvailable. */
  collect(ctx: CollectContext): Promise<Output[]>;
  /** Whether this source's main output is split into deployments (to rebuild outputs from its cache). */
  splitsDeployments: boolean;
}

/** The last value of a setting, or a default. */
export function setting(ctx: { settings: Record<string, string[]> }, key: string): string | undefined {
  const values = ctx.settings[key];
  return values && values.length ? values[values.length - 1] : undefined;
}

export function timeoutSetting(settings: Record<string, string[]>, fallback = 10): number {
  const v = setting({ settings }, "timeout");
  const n = v === undefined ? fallback : Number(v);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}
