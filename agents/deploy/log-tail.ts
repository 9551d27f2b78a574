import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** The end of the ramdisk's log, whole lines, at most `limit` bytes (a result carries it to the deployer). */
export function logTail(path: string | undefined, limit: number): string | undefined {
  if (!path) return undefined;
  let fd = -1;
  try {
    fd = openSync(path, "r");
    const size = fstatSync(fd).size;
    const n = Math.min(size, limit);
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, size - n);
    const text = buf.toString("utf8");
    return n < size ? text.slice(text.indexOf("\n") + 1) : text;
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}
