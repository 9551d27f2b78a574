import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import { log } from "../../lib/log.ts";
import { pyDumps } from "../pyjson/dumps.ts";
import type { PyDict } from "../pyjson/value.ts";
import { nodeToken } from "../collectors/heat.ts";
import { trustEnv } from "../trust.ts";
import { debug } from "../log.ts";
import { bootstrapGroups } from "./bootstrap.ts";
import { Cache } from "./cache.ts";
import { collectAll, newPollState } from "./collect.ts";
import type { CollectConfig } from "./config.ts";

/** Why the loop ended: an exit code, or "reload" (SIGHUP or changed config files: read the config again). */
export type LoopEnd = number | "reload";

export function fingerprint(files: string[]): string {
  const h = createHash("md5");
  for (const f of files) h.update(`${f}\0${existsSync(f) ? readFileSync(f) : ""}\0`);
  return h.digest("hex");
}

/** The next pause: doubled, capped at the polling interval; never reset on change (as the original since 2017). */
export function nextSleep(current: number, pollingInterval: number): number {
  return Math.min(current * 2, pollingInterval);
}

/** A sleep that SIGHUP or stop cuts short. */
function pause(seconds: number, wake: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (wake.aborted) return resolve();
    const timer = setTimeout(done, seconds * 1000);
    wake.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      wake.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * The command's environment: ours, OS_CONFIG_FILES, and the node's token as
 * OOO_SIGNAL_TOKEN when the heat collector has one, so os-refresh-config can
 * sign its completion signal with the token this collector authenticated with;
 * and the CAs the config drive gave (agents/trust.ts) for its https requests.
 */
function commandEnv(config: CollectConfig, files: string): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = trustEnv({ ...process.env, OS_CONFIG_FILES: files });
  if (env.OOO_SIGNAL_TOKEN === undefined) {
    try {
      const token = nodeToken(config.groups.get("heat") ?? {});
      if (token) env.OOO_SIGNAL_TOKEN = token;
    } catch (e) {
      debug(`no token for the signal: ${(e as Error).message}`);
    }
  }
  return env;
}

async function runCommand(command: string, paths: string[], config: CollectConfig): Promise<number> {
  const files = paths.join(":");
  log.info(`Executing ${command} with OS_CONFIG_FILES=${files}`);
  const child = Bun.spawn(["/bin/sh", "-c", command], {
    env: commandEnv(config, files),
    stdio: ["inherit", "inherit", "inherit"],
  });
  const code = await child.exited;
  return child.signalCode ? 128 + (constants.signals[child.signalCode as keyof typeof constants.signals] ?? 0) : code;
}

export interface LoopSignals {
  /** Stop for good (tests, SIGTERM handling by the caller). */
  stop: AbortSignal;
  /** Set when SIGHUP arrived; the loop reloads at the next safe point. */
  hup: { pending: boolean; wake: AbortController };
}

/**
 * os-collect-config's main loop: poll, and when something changed (or with
 * --force) run the command with OS_CONFIG_FILES; commit the cache only when
 * it succeeded, so a failed run is retried on the next poll. Pauses start
 * at min_polling_interval and double up to polling_interval (never reset,
 * as in the original). Without a command (or with --print) it prints one
 * JSON object of everything collected and stops.
 */
export async function pollLoop(config: CollectConfig, signals: LoopSignals): Promise<LoopEnd> {
  const s = config.settings;
  if (s.print_cachedir) {
    process.stdout.write(`${s.cachedir}\n`);
    return 0;
  }
  const command = s.command?.trim() ? s.command : undefined;
  const storeAndRun = Boolean(command && !s.print_only);
  const oneTime = s.one_time || s.force;
  if (s.splay > 0 && !oneTime) await pause(Math.floor(Math.random() * s.splay), signals.stop);

  const cache = storeAndRun ? new Cache(s.cachedir, s.backup_cachedir) : undefined;
  const state = newPollState();
  const configPrint = fingerprint(config.configFiles);
  let exit = 0;
  let sleep = s.min_polling_interval;
  for (;;) {
    // Not a log.step: a poll every few seconds must not fill the journal; changes and problems are logged.
    let poll = await collectAll(config, cache, state, signals.stop);
    if (signals.stop.aborted) return exit;
    const bootstrapped = bootstrapGroups(config, poll.outputs);
    if (bootstrapped) {
      config = bootstrapped.config;
      log.info(`Source [${bootstrapped.configured.join("], [")}] configured from the collected os-collect-config settings: polling again before running the command`);
      poll = await collectAll(config, cache, state, signals.stop);
      if (signals.stop.aborted) return exit;
    }
    if (!storeAndRun) {
      const merged: PyDict = new Map();
      for (const [name, content] of poll.outputs) merged.set(name, content);
      process.stdout.write(pyDumps(merged, { indent: 1 }) + "\n");
      return 0;
    }
    if (poll.changed.size || s.force) {
      const code = await runCommand(command!, poll.paths, config);
      if (code === 0) for (const name of poll.changed) cache!.commit(name);
      else {
        exit = code;
        log.error(`Command failed, will not cache new data. Command '${command}' returned non-zero exit status ${code}.`);
      }
      if (!oneTime && fingerprint(config.configFiles) !== configPrint) {
        log.info("Config files changed: reloading.");
        return "reload";
      }
    } else debug("No changes detected.");
    if (oneTime) return exit;
    if (signals.hup.pending) return "reload";
    debug(`Sleeping ${sleep.toFixed(2)} seconds.`);
    await pause(sleep, AbortSignal.any([signals.stop, signals.hup.wake.signal]));
    if (signals.stop.aborted) return exit;
    if (signals.hup.pending) return "reload";
    sleep = nextSleep(sleep, s.polling_interval);
  }
}
