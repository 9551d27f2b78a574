import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { READY_MARKER, ReadyReport } from "../wire/ready-report.ts";
import type { NodeRow, StateDb } from "./state.ts";

/**
 * Watching nodes while they boot, configure or take over an image: each
 * node's console log read as it grows (never again from the start), a
 * deadline per node, and one loop for all of them that reads them all at
 * once. A deploy's wait for the completion signal and an upgrade's watch of
 * a node's takeover both run on it.
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

/** What a node's "booted" event keeps of its ready report. */
export const bootedDetail = (report: ReadyReport) => ({
  uptime: report.uptime,
  slot: report.slot,
  failedUnits: report.failedUnits,
  ...(report.boot ? { boot: report.boot } : {}),
});

/** What a watch sees of its node. */
export type WatchedNode = Pick<NodeRow, "name" | "state" | "serial" | "signalled_serial" | "powered_on_at" | "error" | "collected_serial" | "console_offset" | "changed">;

export interface NodeWatch<T> {
  node: string;
  /** The node's console log, and where in it this watch starts (earlier boots' lines do not count). */
  console: { file: string | undefined; from: number };
  /** When `expired` is asked what to do. */
  deadline: number;
  /** Tick only when the node's row changed, its power turn came or its deadline passed (nothing else to look at: no console); else every round. */
  quiet?: boolean;
  /**
   * A result ends the watch. `row` is the node as last read (undefined:
   * gone); `console.ready()` reads what the console printed since the last
   * read; `checkPower`: this watch's turn to ask the machine's power
   * (rationed, POWER_CHECKS).
   */
  tick(seen: { console: ConsoleWatch; now: number; row: WatchedNode | undefined; checkPower: boolean }): T | undefined | Promise<T | undefined>;
  /** The deadline passed: a result, or a later deadline (one more chance). */
  expired(now: number): { result: T } | { until: number } | Promise<{ result: T } | { until: number }>;
}

/** How often the watched nodes' changes are read. */
export const ROUND_MS = 250;
/**
 * Asking a machine's power costs a process (qemu's pidfile and /proc) or a
 * BMC round trip: each watched node is asked at most every `everyMs`, and
 * all of them together at most `perSecond` times a second, least recently
 * asked first — 2 s each for a few nodes, every ~N/40 s each for a fleet.
 */
export const POWER_CHECKS = { everyMs: 2_000, perSecond: 40 };

interface Entry {
  w: NodeWatch<unknown>;
  console: ConsoleWatch;
  deadline: number;
  row: WatchedNode | undefined;
  /** The row changed since the last tick. */
  dirty: boolean;
  powerCheckedAt: number;
  busy: boolean;
  done: boolean;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

/**
 * The watches of one state database. Every ROUND_MS one query reads the
 * nodes changed since the last round (the state's change sequence), and
 * the watches whose node changed tick — the others only when they have
 * something of their own to look at (a console, a power turn, their
 * deadline). So ten thousand nodes waiting for their signals cost a query
 * of what changed, not ten thousand reads a round.
 */
class Watcher {
  private readonly entries = new Set<Entry>();
  private readonly byNode = new Map<string, Set<Entry>>();
  /** Entries in the order their power was last asked (the front: longest ago). */
  private powerQueue: Entry[] = [];
  private powerBudget = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The last change read. */
  private seen = 0;

  constructor(private readonly db: StateDb) {}

  watch<T>(w: NodeWatch<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.entries.size) this.seen = this.db.lastChange();
      const entry: Entry = {
        w: w as NodeWatch<unknown>,
        console: new ConsoleWatch(w.console.file, w.console.from),
        deadline: w.deadline,
        row: this.db.watchedNode(w.node),
        dirty: true,
        powerCheckedAt: 0,
        busy: false,
        done: false,
        resolve: resolve as (v: unknown) => void,
        reject,
      };
      this.entries.add(entry);
      let same = this.byNode.get(w.node);
      if (!same) this.byNode.set(w.node, (same = new Set()));
      same.add(entry);
      this.powerQueue.push(entry);
      this.run(entry, Date.now(), false); // the first tick at once, as a lone wait had it
      this.timer ??= setTimeout(() => this.round(), ROUND_MS);
    });
  }

  private finish(e: Entry, settle: () => void) {
    if (e.done) return;
    e.done = true;
    this.entries.delete(e);
    this.byNode.get(e.w.node)?.delete(e);
    if (!this.byNode.get(e.w.node)?.size) this.byNode.delete(e.w.node);
    if (!this.entries.size) this.powerQueue = [];
    settle();
  }

  private round() {
    this.timer = undefined;
    if (!this.entries.size) return;
    const now = Date.now();
    try {
      for (const row of this.db.changedNodes(this.seen)) {
        this.seen = Math.max(this.seen, row.changed);
        for (const e of this.byNode.get(row.name) ?? []) {
          e.row = row;
          e.dirty = true;
        }
      }
    } catch (err) {
      for (const e of [...this.entries]) this.finish(e, () => e.reject(err));
      return;
    }
    const turns = this.powerTurns(now);
    for (const e of this.entries) {
      const turn = turns.has(e);
      if (!e.busy && (e.dirty || turn || !e.w.quiet || now > e.deadline)) this.run(e, now, turn);
    }
    this.timer = setTimeout(() => this.round(), ROUND_MS);
  }

  /** The watches whose turn it is to ask their machine's power this round. */
  private powerTurns(now: number): Set<Entry> {
    this.powerBudget = Math.min(this.powerBudget + (POWER_CHECKS.perSecond * ROUND_MS) / 1000, POWER_CHECKS.perSecond);
    const turns = new Set<Entry>();
    while (this.powerBudget >= 1 && this.powerQueue.length) {
      const e = this.powerQueue[0]!;
      // Finished watches leave the queue when they come to its front.
      if (e.done) {
        this.powerQueue.shift();
        continue;
      }
      if (now - e.powerCheckedAt < POWER_CHECKS.everyMs) break;
      this.powerQueue.shift();
      e.powerCheckedAt = now;
      this.powerQueue.push(e);
      turns.add(e);
      this.powerBudget--;
    }
    return turns;
  }

  private run(e: Entry, now: number, checkPower: boolean) {
    e.busy = true;
    e.dirty = false;
    void (async () => {
      const result = await e.w.tick({ console: e.console, now, row: e.row, checkPower });
      if (result !== undefined) return this.finish(e, () => e.resolve(result));
      if (now > e.deadline) {
        const next = await e.w.expired(now);
        if ("result" in next) return this.finish(e, () => e.resolve(next.result));
        e.deadline = next.until;
      }
    })()
      .catch((err: unknown) => this.finish(e, () => e.reject(err)))
      .finally(() => (e.busy = false));
  }
}

const watchers = new WeakMap<StateDb, Watcher>();

/** Watch a node until its watch has a result; all watches of a state database share its rounds. */
export function watchNode<T>(db: StateDb, w: NodeWatch<T>): Promise<T> {
  let watcher = watchers.get(db);
  if (!watcher) watchers.set(db, (watcher = new Watcher(db)));
  return watcher.watch(w);
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
