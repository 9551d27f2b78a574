import { lstatSync, readlinkSync } from "node:fs";
import { posix } from "node:path";

/**
 * `path` as the image itself would resolve it: every symbolic link on the
 * way is followed inside `root` (an absolute target means the root's /),
 * never on the build host. Returns the path relative to `root`, without a
 * leading slash; undefined when something on the way does not exist.
 * `onLink` sees every link followed (its path relative to `root`, its target).
 */
export function resolveInRoot(root: string, path: string, onLink?: (link: string, target: string) => void): string | undefined {
  const pending = posix.normalize(`/${path}`).split("/").filter(Boolean);
  const done: string[] = [];
  for (let hops = 0; pending.length; ) {
    const name = pending.shift()!;
    if (name === "..") {
      done.pop();
      continue;
    }
    const rel = [...done, name].join("/");
    let stat;
    try {
      stat = lstatSync(`${root}/${rel}`);
    } catch {
      return undefined;
    }
    if (!stat.isSymbolicLink()) {
      done.push(name);
      continue;
    }
    if (++hops > 40) return undefined;
    const target = readlinkSync(`${root}/${rel}`);
    onLink?.(rel, target);
    if (target.startsWith("/")) done.length = 0;
    pending.unshift(...target.split("/").filter((p) => p && p !== "."));
  }
  return done.join("/");
}
