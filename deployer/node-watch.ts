import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { READY_MARKER, ReadyReport } from "../wire/ready-report.ts";

/**
 * Watching a node while it boots, configures or takes over an image: its
 * console log read as it grows (never again from the start), and one loop
 * with a deadline. A deploy's wait for the completion signal and an
 * upgrade's watch of a node's takeover both run on it.
 */

/** The console log's size now: a watch that starts here sees only what comes next. */
export const consoleSize = (file: string | undefined) => (file && existsSync(file) ? statSync(file).size : 0);

/** Reads a console log as it grows and finds the ready line (OOO-READY) of the node's next boot. */
export class ConsoleWatch {
  private pos: number;
  private carry = "";
  constructor(
    private readonly file: string | undefined,
    from: number,
  ) {
    this.pos = from;
  }

  /** The ready report printed since the last call, if any. */
  ready(): ReadyReport | undefined {
    if (!this.file || !existsSync(this.file)) return undefined;
    const size = statSync(this.file).size;
    if (size <= this.pos) return undefined;
    const buf = Buffer.alloc(Math.min(size - this.pos, 4 << 20));
    const fd = openSync(this.file, "r");
    try {
      readSync(fd, buf, 0, buf.length, this.pos);
    } finally {
      closeSync(fd);
    }
    this.pos += buf.length;
    const text = this.carry + buf.toString("utf8").replaceAll("\r", "");
    const m = READY_MARKER.exec(text);
    this.carry = text.slice(text.lastIndexOf("\n") + 1).slice(-8192);
    if (!m) return undefined;
    try {
      return ReadyReport.parse(JSON.parse(m[1]!));
    } catch {
      return undefined;
    }
  }
}

export interface NodeWatch<T> {
  /** The node's console log, and where in it this watch starts (earlier boots' lines do not count). */
  console: { file: string | undefined; from: number };
  /** When `expired` is asked what to do. */
  deadline: number;
  intervalMs: number;
  /** Every interval: a result ends the watch. `console.ready()` reads what the console printed since the last read. */
  tick(seen: { console: ConsoleWatch; now: number }): T | undefined | Promise<T | undefined>;
  /** The deadline passed: a result, or a later deadline (one more chance). */
  expired(now: number): { result: T } | { until: number } | Promise<{ result: T } | { until: number }>;
}

export async function watchNode<T>(w: NodeWatch<T>): Promise<T> {
  const console = new ConsoleWatch(w.console.file, w.console.from);
  let deadline = w.deadline;
  for (;;) {
    const now = Date.now();
    const result = await w.tick({ console, now });
    if (result !== undefined) return result;
    if (now > deadline) {
      const next = await w.expired(now);
      if ("result" in next) return next.result;
      deadline = next.until;
      continue; // ask again at once: something may have come in meanwhile
    }
    await Bun.sleep(w.intervalMs);
  }
}

/** The last lines of a console log (from `from`), without terminal escapes. */
export function consoleTail(file: string | undefined, lines = 25, from = 0): string {
  if (!file || !existsSync(file)) return "(no console log)";
  const size = statSync(file).size;
  const start = Math.min(size, Math.max(from, size - 64 * 1024));
  const buf = Buffer.alloc(size - start);
  const fd = openSync(file, "r");
  try {
    readSync(fd, buf, 0, buf.length, start);
  } finally {
    closeSync(fd);
  }
  const text = buf
    .toString("utf8")
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")
    .replaceAll("\r", "");
  const tail = text.trimEnd().split("\n").slice(-lines);
  return tail.length && tail.some((l) => l.trim()) ? tail.join("\n") : "(the console is empty)";
}
