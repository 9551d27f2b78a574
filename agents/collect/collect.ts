import { log } from "../../lib/log.ts";
import { COLLECTORS } from "../collectors/index.ts";
import type { Output } from "../collectors/types.ts";
import { SourceNotAvailable, SourceNotConfigured } from "../errors.ts";
import { debug } from "../log.ts";
import type { Cache } from "./cache.ts";
import type { CollectConfig } from "./config.ts";
import { splitDeployments } from "./deployments.ts";

/** What one poll found. */
export interface Poll {
  /** Every output, in precedence order (later wins in os-apply-config). */
  outputs: Output[];
  /** Outputs whose content differs from the last commit (store mode). */
  changed: Set<string>;
  /** Cache files of the outputs, in order: OS_CONFIG_FILES. */
  paths: string[];
}

/** Remembered across polls: per-collector memos and the last complaint (logged once, not every poll). */
export interface PollState {
  memos: Map<string, Record<string, unknown>>;
  lastProblem: Map<string, string>;
}

export const newPollState = (): PollState => ({ memos: new Map(), lastProblem: new Map() });

class TimedOut extends Error {}

async function collectOne(name: string, config: CollectConfig, state: PollState, stop: AbortSignal): Promise<Output[]> {
  const collector = COLLECTORS.get(name)!;
  const settings = config.groups.get(name) ?? {};
  const seconds = collector.timeoutSeconds(settings);
  const controller = new AbortController();
  const signal = AbortSignal.any([stop, controller.signal]);
  let timer: Timer | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(new TimedOut());
      reject(new SourceNotAvailable(name, `timed out after ${seconds}s`));
    }, seconds * 1000);
  });
  const memo = state.memos.get(name) ?? {};
  state.memos.set(name, memo);
  try {
    return await Promise.race([
      collector.collect({ settings, cachedir: config.settings.cachedir, deploymentKeys: config.settings.deployment_key, signal, memo }),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Ask every collector, all at once, each within its own timeout. A source
 * that fails or times out costs nothing to the others; in store mode its
 * last cached outputs stand in for it, so os-apply-config does not render
 * without it (the original dropped it from OS_CONFIG_FILES for that poll).
 */
export async function collectAll(config: CollectConfig, cache: Cache | undefined, state: PollState, stop: AbortSignal): Promise<Poll> {
  const names = config.settings.collectors;
  const results = await Promise.all(
    names.map(async (name): Promise<Output[]> => {
      try {
        const outputs = await collectOne(name, config, state, stop);
        if (state.lastProblem.delete(name)) log.info(`Source [${name}] available again.`);
        return outputs;
      } catch (e) {
        if (e instanceof SourceNotConfigured) {
          debug(`Source [${name}] Not configured: ${e.reason}`);
          return [];
        }
        const reason = e instanceof SourceNotAvailable ? e.reason : `internal error: ${(e as Error).stack ?? e}`;
        if (state.lastProblem.get(name) !== reason) log.warn(`Source [${name}] Unavailable: ${reason}`);
        else debug(`Source [${name}] still unavailable: ${reason}`);
        state.lastProblem.set(name, reason);
        return cache ? fromCache(name, cache, config) : [];
      }
    }),
  );
  const outputs = results.flat();
  const changed = new Set<string>();
  const paths: string[] = [];
  if (cache) {
    for (const [name, content] of outputs) {
      const r = cache.store(name, content);
      if (r.changed) changed.add(name);
      paths.push(r.path);
    }
    if (changed.size) {
      cache.storeList(outputs.map(([n]) => n));
      cache.backup();
    }
  }
  return { outputs, changed, paths };
}

/** A down source's outputs, rebuilt from its cache (local's per-file outputs cannot be, and are left out). */
function fromCache(name: string, cache: Cache, config: CollectConfig): Output[] {
  const collector = COLLECTORS.get(name)!;
  if (name === "local") return [];
  const content = cache.read(name);
  if (content === undefined) return [];
  debug(`Source [${name}]: using its cached data`);
  return collector.splitsDeployments ? splitDeployments(name, content, config.settings.deployment_key) : [[name, content]];
}
