import type { StateDb } from "./state.ts";

/**
 * Bounded history. Every command and every node's report adds events (a
 * 10,000-node deploy about a hundred thousand), so the events table keeps:
 *
 *   - every event since the start of the oldest of the last HISTORY.runs
 *     runs (more when the newest runs were all killed: the next run's
 *     timeline takes them all over): what the timelines are built from;
 *   - every event of the last HISTORY.days days (what nodes reported
 *     between commands: signals after reboots, upgrade progress);
 *   - each node's upgrade-start events, whatever their age: they number
 *     its attempts at an image (a node never retries an attempt it rolled
 *     back from).
 *
 * Older events are deleted when a deploy or upgrade starts, and daily by
 * the metadata service. `ooo status` reads none of them (the nodes' rows
 * hold their state); the written timelines (timelines/run-N.*) stay.
 * Signals keep each node's latest serial only (StateDb.recordSignal).
 */
export const HISTORY = { runs: 3, days: 7 };
/** Events deleted per transaction: the write lock is held briefly, the other process goes on. */
const CHUNK = 2_000;
const DAY_MS = 86_400_000;

/** Where the kept history starts (ms since the epoch). */
export function historyStart(db: StateDb, now = Date.now()): number {
  const runs = db.db.query<{ started_at: number; ended_at: number | null }, []>("SELECT started_at, ended_at FROM runs ORDER BY id DESC").all();
  let start = now;
  let kept = 0;
  // The newest runs while none has finished (a run being resumed, and the killed runs its timeline will take over).
  let killedHead = true;
  for (const r of runs) {
    killedHead &&= r.ended_at === null;
    if (kept >= HISTORY.runs && !killedHead) break;
    start = r.started_at;
    kept++;
  }
  return Math.min(start, now - HISTORY.days * DAY_MS);
}

/** Delete what HISTORY does not keep; the number of events deleted. `whenFree`: without blocking this process (StateDb.writeWhenFree). */
export async function pruneHistory(db: StateDb, options: { now?: number; whenFree?: boolean } = {}): Promise<number> {
  const cutoff = historyStart(db, options.now);
  const chunk = () =>
    db.db.query("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? AND kind != 'upgrade-start' LIMIT ?)").run(cutoff, CHUNK).changes;
  let removed = 0;
  for (;;) {
    const n = options.whenFree ? await db.writeWhenFree(chunk) : db.write(chunk);
    removed += n;
    if (n < CHUNK) return removed;
  }
}
