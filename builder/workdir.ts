import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { run } from "../lib/run.ts";

/**
 * Where a build does its work. By default a tmpfs mounted inside the build's
 * private mount namespace, over a fixed, always-empty folder of the image
 * cache: concurrent builds each see their own tmpfs there, and when a build
 * ends or is killed the kernel drops it with the namespace — nothing to clean.
 * With --no-tmpfs (or --keep-failed) it is a folder on disk named after the
 * launcher's pid, removed at the end and, if the launcher was killed, by the
 * next launcher that finds its pid dead.
 */
export function workBase(imageCache: string) {
  return join(imageCache, "ooo-work");
}

export function diskWorkDir(imageCache: string, launcherPid: number) {
  return join(workBase(imageCache), `build-${launcherPid}`);
}

/** Called by the launcher (host pid namespace): drop work folders of dead launchers. */
export function removeStaleWorkDirs(imageCache: string) {
  const base = workBase(imageCache);
  if (!existsSync(base)) return;
  for (const name of readdirSync(base)) {
    const m = /^build-(\d+)$/.exec(name);
    if (!m) continue;
    let alive = false;
    try {
      process.kill(Number(m[1]), 0);
      alive = true;
    } catch {}
    if (!alive) rmSync(join(base, name), { recursive: true, force: true });
  }
}

export async function prepareWorkDir(options: {
  imageCache: string;
  onDisk: boolean;
  launcherPid: number;
}): Promise<string> {
  const base = workBase(options.imageCache);
  mkdirSync(base, { recursive: true });
  if (options.onDisk) {
    const dir = diskWorkDir(options.imageCache, options.launcherPid);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    return dir;
  }
  await run("mount", ["-t", "tmpfs", "-o", "size=75%,mode=0755", "ooo-build", base], { what: "mounting the build tmpfs" });
  return base;
}
