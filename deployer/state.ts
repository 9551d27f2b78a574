import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { OooError } from "../lib/errors.ts";
import type { NodeSize } from "./drivers/driver.ts";
import type { WatchedNode } from "./node-watch.ts";

/**
 * The deployer's state: one SQLite database (bun:sqlite) per stack, in its
 * state folder. Nodes with their state and what was written to them, every
 * transition and event with a timestamp, the completion signals, and the
 * runs of ooo commands. Two processes use it at once — `ooo deploy` and the
 * metadata service daemon — so it runs in WAL mode with a busy timeout, and
 * every state change is one transaction (read, check, write, record) that
 * takes the write lock before it reads (`write`, BEGIN IMMEDIATE): a
 * transaction that read first and then asked for the lock while the other
 * process wrote was refused at once ("database is locked" — SQLite cannot
 * wait there without risking a deadlock), where one that asks first waits
 * its turn within the busy timeout.
 *
 * A command killed in the middle leaves each node in the state of its last
 * finished step; the next `ooo deploy` resumes from there.
 */
export type NodeState = "new" | "writing-image" | "powering-on" | "booting" | "configuring" | "active" | "failed" | "deleting";

/**
 * Where a node may go from each state (Ironic's provision states, folded):
 * new → writing-image → powering-on → booting → configuring → active; any
 * step may fail; a failed node is retried (re-imaged, or given its metadata
 * again); an active node is reconfigured (new metadata), rebuilt, or deleted.
 * The signal may come before the ready line (the agents run before the
 * report does), so booting → active is allowed; and before the deployer
 * has recorded the power-on it asked for (a node that boots fast, a busy
 * deployer), so powering-on → active too.
 */
export const TRANSITIONS: Record<NodeState, readonly NodeState[]> = {
  new: ["writing-image", "failed", "deleting"],
  "writing-image": ["writing-image", "powering-on", "failed", "deleting"],
  "powering-on": ["powering-on", "booting", "active", "writing-image", "failed", "deleting"],
  booting: ["booting", "configuring", "active", "powering-on", "writing-image", "failed", "deleting"],
  configuring: ["configuring", "active", "powering-on", "writing-image", "failed", "deleting"],
  active: ["configuring", "powering-on", "writing-image", "failed", "deleting"],
  failed: ["failed", "writing-image", "powering-on", "configuring", "active", "deleting"],
  deleting: ["deleting"],
};

export class BadTransition extends OooError {
  readonly code = "bad-transition";
  constructor(node: string, from: NodeState, to: NodeState) {
    super(`node ${node} cannot go from ${from} to ${to}; this is a bug in ooo`);
  }
}

export interface NodeRow {
  name: string;
  role: string;
  idx: number;
  pool: string;
  /** The inventory entry's settings when the node was made (a node outlives its entry in the stack file). */
  pool_config: Record<string, unknown>;
  /** The machine it runs on, for bare-metal drivers (machines table). */
  machine: string | null;
  driver: string;
  state: NodeState;
  size: NodeSize;
  image_ref: string | null;
  image_name: string | null;
  image_digest: string | null;
  token_hash: string | null;
  serial: number;
  /** The node metadata served (wire/metadata.ts NodeMetadata), JSON. */
  metadata: string | null;
  /** Hash of what the stack says about the node's configuration, to see changes. */
  config_hash: string | null;
  collected_serial: number | null;
  signalled_serial: number | null;
  powered_on_at: number | null;
  console_offset: number | null;
  /** When the current wait for a signal began (power-on, or the metadata change). */
  waiting_since: number | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  /** Its place in the sequence of changes to nodes (CHANGES). */
  changed: number;
}

const WATCHED = "name, state, serial, signalled_serial, powered_on_at, error, collected_serial, console_offset, changed";

export type TokenNode = Pick<NodeRow, "name" | "state" | "serial" | "metadata" | "collected_serial">;

export interface EventRow {
  id: number;
  at: number;
  node: string;
  run: number | null;
  kind: string;
  from_state: NodeState | null;
  to_state: NodeState | null;
  detail: Record<string, unknown> | null;
}

export interface SignalRow {
  node: string;
  serial: number;
  at: number;
  status: "SUCCESS" | "FAILURE";
  reason: string;
  body: string;
}

export interface RunRow {
  id: number;
  command: string;
  pid: number;
  started_at: number;
  ended_at: number | null;
  result: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  idx INTEGER NOT NULL,
  pool TEXT NOT NULL,
  pool_config TEXT NOT NULL DEFAULT '{}',
  driver TEXT NOT NULL,
  state TEXT NOT NULL,
  size TEXT NOT NULL,
  image_ref TEXT, image_name TEXT, image_digest TEXT,
  token_hash TEXT,
  serial INTEGER NOT NULL DEFAULT 0,
  metadata TEXT,
  config_hash TEXT,
  collected_serial INTEGER,
  signalled_serial INTEGER,
  powered_on_at INTEGER,
  console_offset INTEGER,
  waiting_since INTEGER,
  error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  node TEXT NOT NULL,
  run INTEGER,
  kind TEXT NOT NULL,
  from_state TEXT,
  to_state TEXT,
  detail TEXT
);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE INDEX IF NOT EXISTS events_node ON events (node, at);
CREATE TABLE IF NOT EXISTS signals (
  node TEXT NOT NULL,
  serial INTEGER NOT NULL,
  at INTEGER NOT NULL,
  status TEXT NOT NULL,
  reason TEXT NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (node, serial)
);
CREATE INDEX IF NOT EXISTS nodes_token ON nodes (token_hash);
CREATE TABLE IF NOT EXISTS machines (
  name TEXT PRIMARY KEY,
  pool TEXT NOT NULL,
  driver TEXT NOT NULL,
  config TEXT NOT NULL,
  macs TEXT NOT NULL,
  node TEXT,
  state TEXT NOT NULL,
  armed INTEGER NOT NULL DEFAULT 0,
  token_hash TEXT,
  command TEXT,
  command_serial INTEGER NOT NULL DEFAULT 0,
  inventory TEXT,
  result TEXT,
  phase TEXT,
  seen_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS machines_token ON machines (token_hash);
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  command TEXT NOT NULL,
  pid INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  result TEXT
);
`;
/**
 * Every insert or update of a node gives its row the next number of one
 * sequence (`changed`): writes hold the write lock, so the numbers follow
 * the commits, and "the nodes changed since N" is one indexed query (the
 * node watcher's rounds). Triggers, so that no write can forget it.
 */
const CHANGES = `
CREATE INDEX IF NOT EXISTS nodes_changed ON nodes (changed);
CREATE TRIGGER IF NOT EXISTS nodes_changed_insert AFTER INSERT ON nodes FOR EACH ROW
BEGIN UPDATE nodes SET changed = (SELECT IFNULL(MAX(changed), 0) + 1 FROM nodes) WHERE name = NEW.name; END;
CREATE TRIGGER IF NOT EXISTS nodes_changed_update AFTER UPDATE ON nodes FOR EACH ROW WHEN NEW.changed IS OLD.changed
BEGIN UPDATE nodes SET changed = (SELECT IFNULL(MAX(changed), 0) + 1 FROM nodes) WHERE name = NEW.name; END;
`;
const SCHEMA_VERSION = "1";

type Row = Record<string, unknown>;
const toNode = (r: Row): NodeRow => ({
  ...(r as unknown as NodeRow),
  size: JSON.parse(r.size as string) as NodeSize,
  pool_config: JSON.parse(r.pool_config as string) as Record<string, unknown>,
});
const COLUMN_JSON = new Set(["size", "pool_config"]);
const toEvent = (r: Row): EventRow => ({ ...(r as unknown as EventRow), detail: r.detail ? (JSON.parse(r.detail as string) as Record<string, unknown>) : null });

export const STATE_DB = "state.db";
/** How long a write waits for the write lock (the other process's transaction) before it fails. */
export const BUSY_TIMEOUT_MS = 10_000;

/** SQLite said the database is locked (by another connection's write). */
export const isBusy = (e: unknown) => String((e as { code?: unknown })?.code ?? "").startsWith("SQLITE_BUSY");

export class StateDb {
  private constructor(
    readonly db: Database,
    readonly dir: string,
  ) {}

  /** `busyTimeoutMs`: how long a write waits for the lock inside the call (default BUSY_TIMEOUT_MS); 0 for writeWhenFree. */
  static open(dir: string, options: { create?: boolean; busyTimeoutMs?: number } = {}): StateDb {
    if (options.create !== false) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = new Database(join(dir, STATE_DB), { create: options.create !== false, strict: true });
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec(SCHEMA);
    // Columns added after the first schema: added to older databases as they are opened.
    const columns = new Set(db.query<{ name: string }, []>("SELECT name FROM pragma_table_info('nodes')").all().map((c) => c.name));
    if (!columns.has("machine")) db.exec("ALTER TABLE nodes ADD COLUMN machine TEXT");
    if (!columns.has("changed")) db.exec("ALTER TABLE nodes ADD COLUMN changed INTEGER NOT NULL DEFAULT 0");
    db.exec(CHANGES);
    const version = db.query<{ value: string }, []>("SELECT value FROM info WHERE key = 'schema'").get();
    if (!version) db.query("INSERT INTO info (key, value) VALUES ('schema', ?)").run(SCHEMA_VERSION);
    else if (version.value !== SCHEMA_VERSION) throw new Error(`state database schema ${version.value}, this ooo knows ${SCHEMA_VERSION}`);
    // The schema is checked with the usual patience; the connection's own writes then wait as asked.
    if (options.busyTimeoutMs !== undefined) db.exec(`PRAGMA busy_timeout = ${Math.floor(options.busyTimeoutMs)}`);
    return new StateDb(db, dir);
  }

  close() {
    this.db.close();
  }

  /**
   * `fn` as one transaction that holds the write lock from its start
   * (BEGIN IMMEDIATE, waiting for it within the busy timeout); inside
   * another, a savepoint of it.
   */
  write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * `write`, for a process that must go on answering while it waits for the
   * lock (the metadata service: SQLite's busy timeout sleeps inside the
   * call, and every node's request waited behind one write while ooo deploy
   * wrote). On a connection opened with busyTimeoutMs 0 a held lock fails at
   * once, and the write is tried again a few milliseconds later, until
   * `withinMs`; then it throws the busy error.
   */
  async writeWhenFree<T>(fn: () => T, withinMs = BUSY_TIMEOUT_MS): Promise<T> {
    const end = Date.now() + withinMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return this.write(fn);
      } catch (e) {
        if (!isBusy(e) || Date.now() > end) throw e;
        await Bun.sleep(Math.min(attempt, 10) * (0.5 + Math.random()));
      }
    }
  }

  // --- stack facts (name, file, store endpoint …) ---

  info(key: string): string | undefined {
    return this.db.query<{ value: string }, [string]>("SELECT value FROM info WHERE key = ?").get(key)?.value;
  }

  setInfo(key: string, value: string) {
    this.db.query("INSERT INTO info (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  /** Which trusted key signed an image (by digest), for `ooo status`; none noted: the image was not verified. */
  noteSigner(digest: string, signer: { name: string; id: string }) {
    this.setInfo(`signer.${digest}`, JSON.stringify(signer));
  }

  signerOf(digest: string): { name: string; id: string } | undefined {
    const v = this.info(`signer.${digest}`);
    return v ? (JSON.parse(v) as { name: string; id: string }) : undefined;
  }

  // --- runs ---

  startRun(command: string): number {
    return Number(this.db.query("INSERT INTO runs (command, pid, started_at) VALUES (?, ?, ?)").run(command, process.pid, Date.now()).lastInsertRowid);
  }

  endRun(id: number, result: string) {
    this.db.query("UPDATE runs SET ended_at = ?, result = ? WHERE id = ?").run(Date.now(), result, id);
  }

  run(id: number): RunRow | undefined {
    return this.db.query<RunRow, [number]>("SELECT * FROM runs WHERE id = ?").get(id) ?? undefined;
  }

  lastRun(command?: string): RunRow | undefined {
    return (
      (command
        ? this.db.query<RunRow, [string]>("SELECT * FROM runs WHERE command = ? ORDER BY id DESC LIMIT 1").get(command)
        : this.db.query<RunRow, []>("SELECT * FROM runs ORDER BY id DESC LIMIT 1").get()) ?? undefined
    );
  }

  // --- nodes ---

  nodes(): NodeRow[] {
    return this.db.query<Row, []>("SELECT * FROM nodes ORDER BY role, idx, name").all().map(toNode);
  }

  /** The nodes' names, in the order of nodes(). */
  nodeNames(): string[] {
    return this.db.query<{ name: string }, []>("SELECT name FROM nodes ORDER BY role, idx, name").all().map((r) => r.name);
  }

  node(name: string): NodeRow | undefined {
    const r = this.db.query<Row, [string]>("SELECT * FROM nodes WHERE name = ?").get(name);
    return r ? toNode(r) : undefined;
  }

  /** The node a token opens (by the token's hash, indexed: the metadata service asks at every request), with what a request needs of it. */
  nodeByToken(hash: string): TokenNode | undefined {
    return this.db.query<TokenNode, [string]>("SELECT name, state, serial, metadata, collected_serial FROM nodes WHERE token_hash = ?").get(hash) ?? undefined;
  }

  /** What the node watcher reads of a node it watches (node-watch.ts). */
  watchedNode(name: string): WatchedNode | undefined {
    return this.db.query<WatchedNode, [string]>(`SELECT ${WATCHED} FROM nodes WHERE name = ?`).get(name) ?? undefined;
  }

  /** The number of the last change to a node (CHANGES). */
  lastChange(): number {
    return this.db.query<{ n: number }, []>("SELECT IFNULL(MAX(changed), 0) AS n FROM nodes").get()!.n;
  }

  /** The same of every node changed since the change numbered `since` (0: all), in the order of their changes. */
  changedNodes(since: number): WatchedNode[] {
    return this.db.query<WatchedNode, [number]>(`SELECT ${WATCHED} FROM nodes WHERE changed > ? ORDER BY changed`).all(since);
  }

  /** The node's metadata at `serial` was fetched (at `at`): noted once per serial. */
  noteCollected(name: string, serial: number, at = Date.now()) {
    this.write(() => {
      const changed = this.db.query("UPDATE nodes SET collected_serial = ?, updated_at = ? WHERE name = ? AND collected_serial IS NOT ?").run(serial, Date.now(), name, serial).changes;
      if (changed) this.insertEvent(name, "metadata-collected", { detail: { serial }, at });
    });
  }

  createNode(
    n: { name: string; role: string; idx: number; pool: string; poolConfig?: Record<string, unknown>; driver: string; size: NodeSize; machine?: string },
    run?: number,
  ): NodeRow {
    const now = Date.now();
    this.write(() => {
      this.db
        .query(
          "INSERT INTO nodes (name, role, idx, pool, pool_config, driver, state, size, machine, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'new', ?, ?, ?, ?)",
        )
        .run(n.name, n.role, n.idx, n.pool, JSON.stringify(n.poolConfig ?? {}), n.driver, JSON.stringify(n.size), n.machine ?? null, now, now);
      this.insertEvent(n.name, "transition", { run, from: null, to: "new" });
    });
    return this.node(n.name)!;
  }

  /** Set fields of a node (not its state: see transition). */
  update(name: string, fields: Partial<Omit<NodeRow, "name" | "state" | "created_at">>) {
    const entries = Object.entries(fields).map(([k, v]) => [k, COLUMN_JSON.has(k) ? JSON.stringify(v) : v] as const);
    if (!entries.length) return;
    const sets = entries.map(([k]) => `${k} = ?`).join(", ");
    this.db.query(`UPDATE nodes SET ${sets}, updated_at = ? WHERE name = ?`).run(...(entries.map(([, v]) => v) as never[]), Date.now(), name);
  }

  /**
   * Move a node to a new state, checked against TRANSITIONS, with its
   * fields, recording the transition — all in one transaction. Returns the
   * state it left.
   */
  transition(
    name: string,
    to: NodeState,
    options: {
      run?: number;
      fields?: Partial<Omit<NodeRow, "name" | "state" | "created_at">>;
      detail?: Record<string, unknown>;
      at?: number;
      /** Move only from one of these states (another process may have moved the node meanwhile); else do nothing and return undefined. */
      onlyFrom?: NodeState[];
    } = {},
  ): NodeState | undefined {
    return this.write(() => {
      const node = this.node(name);
      if (!node) throw new Error(`no node ${name} in the state database`);
      if (options.onlyFrom && !options.onlyFrom.includes(node.state)) return undefined;
      if (!TRANSITIONS[node.state].includes(to)) throw new BadTransition(name, node.state, to);
      this.update(name, options.fields ?? {});
      this.db.query("UPDATE nodes SET state = ?, updated_at = ? WHERE name = ?").run(to, Date.now(), name);
      this.insertEvent(name, "transition", { run: options.run, from: node.state, to, detail: options.detail, at: options.at });
      return node.state;
    });
  }

  deleteNode(name: string, run?: number) {
    this.write(() => {
      this.db.query("DELETE FROM nodes WHERE name = ?").run(name);
      this.db.query("DELETE FROM signals WHERE node = ?").run(name);
      this.insertEvent(name, "deleted", { run });
    });
  }

  // --- events ---

  event(node: string, kind: string, detail?: Record<string, unknown>, options: { run?: number; at?: number } = {}) {
    this.insertEvent(node, kind, { ...options, detail });
  }

  private insertEvent(
    node: string,
    kind: string,
    o: { run?: number; from?: NodeState | null; to?: NodeState; detail?: Record<string, unknown>; at?: number },
  ) {
    this.db
      .query("INSERT INTO events (at, node, run, kind, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(o.at ?? Date.now(), node, o.run ?? null, kind, o.from ?? null, o.to ?? null, o.detail ? JSON.stringify(o.detail) : null);
  }

  events(options: { since?: number; until?: number; node?: string } = {}): EventRow[] {
    const since = options.since ?? 0;
    const until = options.until ?? Number.MAX_SAFE_INTEGER;
    // Two statements: with `(? IS NULL OR node = ?)` SQLite could not use the node's index, and every node's question read every event.
    const rows =
      options.node === undefined
        ? this.db.query<Row, [number, number]>("SELECT * FROM events WHERE at >= ? AND at <= ? ORDER BY at, id").all(since, until)
        : this.db.query<Row, [string, number, number]>("SELECT * FROM events WHERE node = ? AND at >= ? AND at <= ? ORDER BY at, id").all(options.node, since, until);
    return rows.map(toEvent);
  }

  // --- signals ---

  /**
   * Keep a signal; a repeated (node, serial) replaces the earlier one, as
   * Heat's repeated signal id does. The node's signals for earlier serials
   * go: nothing reads them (its runs' outcomes stay in the events).
   */
  recordSignal(s: Omit<SignalRow, "at"> & { at?: number }) {
    this.write(() => {
      this.db
        .query(
          "INSERT INTO signals (node, serial, at, status, reason, body) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (node, serial) DO UPDATE SET at = excluded.at, status = excluded.status, reason = excluded.reason, body = excluded.body",
        )
        .run(s.node, s.serial, s.at ?? Date.now(), s.status, s.reason, s.body);
      this.db.query("DELETE FROM signals WHERE node = ? AND serial < ?").run(s.node, s.serial);
    });
  }

  signal(node: string, serial: number): SignalRow | undefined {
    return this.db.query<SignalRow, [string, number]>("SELECT * FROM signals WHERE node = ? AND serial = ?").get(node, serial) ?? undefined;
  }
}
