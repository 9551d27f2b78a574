import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { log } from "../../lib/log.ts";
import { HookFailed } from "../errors.ts";

const SANDBOX = resolve(import.meta.dir, "sandbox.sh");
export const RUN_HOOK = resolve(import.meta.dir, "run-hook");

export interface HookRun {
  element: string;
  phase: string;
  name: string;
  where: "host" | "target";
  targetRoot: string;
  hooksDir: string;
  /** Host folder bind-mounted over the target's apt archive cache ("" for none). */
  aptArchives: string;
  /** environment.d files in the order to source them (paths as the hook sees them). */
  envFiles: string[];
  env: Record<string, string>;
  /** Kill the hook after this many seconds (0: no limit). */
  timeoutSeconds?: number;
}

/** The shell that runs environment.d files: bash if the root has one (DIB's files are bash). */
function shellFor(run: HookRun): string {
  const root = run.where === "target" ? run.targetRoot : "/";
  return existsSync(join(root, "bin/bash")) ? "/bin/bash" : "/bin/sh";
}

/**
 * Run one hook in a fresh mount + pid namespace: chrooted into the target
 * with /proc, /sys, /dev, /dev/pts and the hooks tree mounted (target
 * phases), or on the host with TARGET_ROOT set (host phases). Output is
 * streamed into the log; a failure names element, phase and file.
 */
export async function runHook(run: HookRun): Promise<void> {
  const hookPath =
    run.where === "target" ? `/tmp/in_target.d/${run.phase}/${run.name}` : join(run.hooksDir, run.phase, run.name);
  const child = execa(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      "--pid",
      "--fork",
      "--kill-child",
      "--mount-proc",
      "--",
      // bash, not sh: dash drops BASH_FUNC_* variables (DIB's exported functions)
      "/bin/bash",
      SANDBOX,
      run.where,
      run.targetRoot,
      run.hooksDir,
      run.aptArchives,
      shellFor(run),
      hookPath,
      ...run.envFiles,
    ],
    {
      env: run.env,
      extendEnv: false,
      stdin: "ignore",
      all: true,
      buffer: false,
      reject: false,
      timeout: run.timeoutSeconds ? run.timeoutSeconds * 1000 : undefined,
      killSignal: "SIGKILL",
    },
  );
  const tail: string[] = [];
  for await (const line of child.iterable({ from: "all" })) {
    const text = String(line);
    log.output(text);
    tail.push(text);
    if (tail.length > 25) tail.shift();
  }
  const result = await child;
  if (result.exitCode !== 0 || result.signal) {
    const status = result.timedOut
      ? `timed out after ${run.timeoutSeconds}s`
      : result.signal
        ? `killed by ${result.signal}`
        : (result.exitCode ?? "unknown");
    throw new HookFailed(run.element, run.phase, run.name, status, tail);
  }
}
