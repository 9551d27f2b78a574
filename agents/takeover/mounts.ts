import { readFileSync } from "node:fs";

/** Whether something is mounted on `dir` (from /proc/self/mountinfo: no findmnt process, which costs under emulation). */
export function isMountPoint(dir: string): boolean {
  // Field 5 is the mount point, with spaces and the like escaped as \ooo.
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[4] === dir);
}
