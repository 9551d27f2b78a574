import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { log } from "../../lib/log.ts";
import { SIGNAL_OUTPUT_LIMIT } from "../../wire/signal.ts";
import { debug } from "../log.ts";
import { killDescendants } from "./processes.ts";
import { Capture, runParts, type ScriptResult } from "./run-parts.ts";

/** The phases in the original's current order (migration moved last in 2014). */
export const PHASES = ["pre-configure", "configure", "post-configure", "migration"] as const;

export const DEFAULT_BASE_DIR = "/usr/libexec/os-refresh-config";
const OLD_BASE_DIR = "/opt/stack/os-config-refresh";

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** $OS_REFRESH_CONFIG_BASE_DIR, else /usr/libexec/os-refresh-config (the old path only if it alone exists). */
export function defaultBaseDir(env = process.env): string {
  if (env.OS_REFRESH_CONFIG_BASE_DIR !== undefined) return env.OS_REFRESH_CONFIG_BASE_DIR;
  if (isDir(OLD_BASE_DIR) && !isDir(DEFAULT_BASE_DIR)) {
    log.warn(`Base directory ${OLD_BASE_DIR} is deprecated. The recommended base directory is ${DEFAULT_BASE_DIR}`);
    return OLD_BASE_DIR;
  }
  return DEFAULT_BASE_DIR;
}

export interface RefreshOutcome {
  ok: boolean;
  /** Every script that ran, in order. */
  scripts: ScriptResult[];
  /** The failing script and its phase. */
  failed?: { phase: string; script: ScriptResult };
  timedOut: boolean;
  capture: Capture;
  seconds: number;
}

/**
 * One os-refresh-config run: each phase folder that exists, in order, its
 * scripts in run-parts order; the first failing script stops the run, the
 * error.d handlers run (their result ignored), and the run fails. With a
 * timeout, every process we started is killed when it expires.
 */
export async function refresh(baseDir: string, options: { timeoutSeconds?: number } = {}): Promise<RefreshOutcome> {
  const t0 = performance.now();
  const capture = new Capture(SIGNAL_OUTPUT_LIMIT);
  const scripts: ScriptResult[] = [];
  let timedOut = false;
  const timer = options.timeoutSeconds
    ? setTimeout(() => {
        timedOut = true;
        log.error(`Timeout reached: ${options.timeoutSeconds}s. Sending SIGKILL to all children`);
        killDescendants();
      }, options.timeoutSeconds * 1000)
    : undefined;
  const done = (failed?: RefreshOutcome["failed"]): RefreshOutcome => ({
    ok: !failed,
    scripts,
    failed,
    timedOut,
    capture,
    seconds: (performance.now() - t0) / 1000,
  });
  try {
    for (const phase of PHASES) {
      const dir = join(baseDir, `${phase}.d`);
      if (!isDir(dir)) {
        debug(`No dir for phase ${phase}`);
        continue;
      }
      let failure: ScriptResult | undefined;
      try {
        await log.step(`phase ${phase}`, async () => {
          const results = await runParts(dir, capture);
          scripts.push(...results);
          const last = results[results.length - 1];
          if (last && last.status !== 0) {
            failure = last;
            throw new Error(`${last.id} exited with status ${last.status}`);
          }
          if (timedOut) {
            failure = { id: `${phase}.d`, status: 137, seconds: 0, tail: ["timed out"] };
            throw new Error("timed out");
          }
        });
      } catch (e) {
        if (!failure) throw e;
        log.error(`during ${phase} phase. [${failure.id} exited with status ${failure.status}${timedOut ? " after the timeout" : ""}]`);
        if (timer) clearTimeout(timer);
        const errorDir = join(baseDir, "error.d");
        if (isDir(errorDir)) {
          log.info("Calling error handlers.");
          // ooo: the handlers learn what failed (the original told them nothing).
          process.env.OOO_FAILED_SCRIPT = failure.id;
          process.env.OOO_FAILED_OUTPUT_TAIL = failure.tail.join("\n");
          await runParts(errorDir, capture).catch((err) => log.warn(`error.d: ${(err as Error).message}`));
        }
        log.error("Aborting...");
        return done({ phase, script: failure });
      }
    }
    return done();
  } finally {
    if (timer) clearTimeout(timer);
  }
}
