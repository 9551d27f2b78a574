import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { diskWorkDir, removeStaleWorkDirs } from "./workdir.ts";

/**
 * A build runs in its own mount and pid namespace. The command the user
 * started (the launcher) re-runs itself as pid 1 of a new namespace:
 *
 *   setpriv --pdeathsig KILL -- unshare --mount --propagation private
 *           --pid --fork --kill-child --mount-proc -- bun ooo.ts build-image …
 *
 * If the launcher dies in any way, even SIGKILL, setpriv's parent-death
 * signal kills unshare, --kill-child kills the build, and the kernel kills
 * every process of the pid namespace and drops every mount of the mount
 * namespace (the work tmpfs, /proc and /dev in the chroot). Cleanup by
 * construction, not by finally-blocks.
 */
export const IN_NAMESPACE = "OOO_BUILD_NS";
export const LAUNCHER_PID = "OOO_BUILD_LAUNCHER_PID";

function stdioPassing(fds: number[]): ("inherit" | number | "ignore")[] {
  const stdio: ("inherit" | number | "ignore")[] = ["inherit", "inherit", "inherit"];
  for (const fd of fds) {
    while (stdio.length < fd) stdio.push("ignore");
    stdio[fd] = fd;
  }
  return stdio;
}

export function insideBuildNamespace(): boolean {
  return process.env[IN_NAMESPACE] === "1";
}

export async function relaunchInNamespace(options: {
  imageCache: string;
  onDisk: boolean;
  keepFailed: boolean;
  /** Descriptors beyond 0-2 the build inside must write to too (`--progress-file /dev/fd/3`). */
  passFds?: number[];
}): Promise<number> {
  removeStaleWorkDirs(options.imageCache);
  // Every file the build makes, by a hook or by ooo (/etc/ooo/state-paths),
  // takes its mode from the umask, and the image keeps modes: the caller's
  // umask must not reach it. 022 is what DIB's hooks get under sudo.
  process.umask(0o022);
  const child = spawn(
    "setpriv",
    [
      "--pdeathsig",
      "KILL",
      "--",
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "--pid",
      "--fork",
      "--kill-child",
      "--mount-proc",
      "--",
      process.execPath,
      ...process.argv.slice(1),
    ],
    { stdio: stdioPassing(options.passFds ?? []), env: { ...process.env, [IN_NAMESPACE]: "1", [LAUNCHER_PID]: String(process.pid) } },
  );
  let interruptedBy: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals) => {
    interruptedBy = signal;
    // The build has nothing to save: outputs appear only when complete.
    child.kill("SIGKILL");
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  process.on("SIGHUP", stop);
  const code = await new Promise<number>((resolve) => {
    child.on("exit", (status, signal) => resolve(status ?? (signal ? 128 + 9 : 1)));
    child.on("error", (e) => {
      process.stderr.write(`error: could not start the build namespace: ${e.message}\n`);
      resolve(1);
    });
  });
  if (options.onDisk && !(options.keepFailed && code !== 0)) {
    rmSync(diskWorkDir(options.imageCache, process.pid), { recursive: true, force: true });
  }
  if (interruptedBy) {
    process.stderr.write(`error: build interrupted by ${interruptedBy}; no output was written\n`);
    return interruptedBy === "SIGINT" ? 130 : 143;
  }
  return code;
}
