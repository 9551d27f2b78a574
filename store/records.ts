import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { publishAtomically } from "../lib/atomic.ts";
import { InvalidInput, type Problem } from "../lib/errors.ts";
import { ImageRecord } from "./image.ts";

/**
 * Image records, one JSON file each (`images/<id>.json`), written whole and
 * atomically (lib/atomic.ts): a reader sees the old record or the new one,
 * never half. The server holds them all in memory — a store has thousands
 * of images, not millions — and is their only writer (store/lock.ts).
 * Deleted images stay as tombstones so that their ids are never reused.
 */
export class RecordStore {
  private readonly records = new Map<string, ImageRecord>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Raised by every save: what was derived from the records (withdrawn.ts) is stale. */
  generation = 0;

  private constructor(private readonly dir: string) {}

  static open(dir: string): RecordStore {
    mkdirSync(dir, { recursive: true });
    const store = new RecordStore(dir);
    const problems: Problem[] = [];
    for (const name of readdirSync(dir)) {
      if (!name.endsWith(".json")) continue;
      const file = join(dir, name);
      try {
        const parsed = ImageRecord.safeParse(JSON.parse(readFileSync(file, "utf8")));
        if (parsed.success && `${parsed.data.id}.json` === name) store.records.set(parsed.data.id, parsed.data);
        else problems.push({ file, message: parsed.success ? "record id does not match its file name" : parsed.error.issues[0]!.message });
      } catch (e) {
        problems.push({ file, message: e instanceof Error ? e.message : String(e) });
      }
    }
    if (problems.length) throw new InvalidInput("the store has records it cannot read", problems);
    return store;
  }

  /** The record, tombstones included. */
  get(id: string): ImageRecord | undefined {
    return this.records.get(id);
  }

  all(): ImageRecord[] {
    return [...this.records.values()];
  }

  async save(record: ImageRecord): Promise<ImageRecord> {
    const checked = ImageRecord.parse(record);
    await publishAtomically(join(this.dir, `${checked.id}.json`), async (path) => {
      writeFileSync(path, JSON.stringify(checked, null, 1) + "\n");
    });
    this.records.set(checked.id, checked);
    this.generation++;
    return checked;
  }

  /**
   * Run `fn` alone for this image: status moves (queued → saving) are
   * read-check-write sequences that two requests must not interleave.
   */
  async withLock<T>(id: string, fn: () => Promise<T> | T): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(id, settled);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === settled) this.locks.delete(id);
    }
  }
}
