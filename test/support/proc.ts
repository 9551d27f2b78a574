import { readFileSync } from "node:fs";

/**
 * Whether a process runs: it exists and is not a zombie. A zombie counts as
 * gone — where nothing reaps orphans (some container inits do not), a
 * killed test stays a zombie, and its test bed must still be swept.
 */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
