import { CommandV1, DEPLOY_VERSION, InventoryV1, RamdiskResultV1, type Command, type Inventory, type RamdiskResult } from "../../wire/deploy.ts";
import { driverFor } from "../drivers/index.ts";
import type { Stack } from "../stack.ts";
import type { StateDb } from "../state.ts";

/**
 * The stack's enrolled machines (bare-metal drivers), in the state
 * database beside its nodes: what each is (its inventory entry's settings),
 * which node runs on it, and its deploy ramdisk's side — armed for a lookup
 * or not, the hash of the token its ramdisk was given, the command it is to
 * carry out (with a serial: the ETag its long poll waits on), the hardware
 * and the last result it reported. The metadata service and `ooo` commands
 * both read and write it, each change one statement.
 *
 * state: off (not in the ramdisk: powered off, or in whatever it ran) ·
 *        ramdisk (network-booted into the deploy ramdisk: armed, or looked up and taking commands) ·
 *        node (runs its node's installed OS)
 */
export type MachineState = "off" | "ramdisk" | "node";

export interface MachineRow {
  name: string;
  pool: string;
  driver: string;
  config: Record<string, unknown>;
  macs: string[];
  node: string | null;
  state: MachineState;
  armed: boolean;
  token_hash: string | null;
  command: Command;
  command_serial: number;
  inventory: Inventory | null;
  result: RamdiskResult | null;
  phase: string | null;
  seen_at: number | null;
  created_at: number;
  updated_at: number;
}

type Row = Record<string, unknown>;

/** The command of a machine with nothing to do: wait in standby. */
export const WAIT: Command = { version: DEPLOY_VERSION, action: "wait" };

const toMachine = (r: Row): MachineRow => ({
  ...(r as unknown as MachineRow),
  config: JSON.parse(r.config as string) as Record<string, unknown>,
  macs: JSON.parse(r.macs as string) as string[],
  armed: Boolean(r.armed),
  command: r.command ? CommandV1.parse(JSON.parse(r.command as string)) : WAIT,
  inventory: r.inventory ? InventoryV1.parse(JSON.parse(r.inventory as string)) : null,
  result: r.result ? RamdiskResultV1.parse(JSON.parse(r.result as string)) : null,
});

/** Events of a machine that no node runs on are kept under this name (the events table is by node). */
export const machineEventName = (machine: string) => `machine/${machine}`;

/** How long after its last request a ramdisk still counts as waiting (its command poll is held 30 s). */
export const RAMDISK_ALIVE_MS = 75_000;

export class Machines {
  constructor(private readonly state: StateDb) {}

  private get db() {
    return this.state.db;
  }

  all(): MachineRow[] {
    return this.db.query<Row, []>("SELECT * FROM machines ORDER BY pool, name").all().map(toMachine);
  }

  get(name: string): MachineRow | undefined {
    const r = this.db.query<Row, [string]>("SELECT * FROM machines WHERE name = ?").get(name);
    return r ? toMachine(r) : undefined;
  }

  /** The machine one of these MACs belongs to. */
  byMac(macs: string[]): MachineRow | undefined {
    return this.all().find((m) => m.macs.some((mac) => macs.includes(mac)));
  }

  byTokenHash(hash: string): MachineRow | undefined {
    const r = this.db.query<Row, [string]>("SELECT * FROM machines WHERE token_hash = ?").get(hash);
    return r ? toMachine(r) : undefined;
  }

  /** Record a machine as the stack's inventory describes it now (its ramdisk side is kept). */
  enroll(m: { name: string; pool: string; driver: string; config: Record<string, unknown>; macs: string[] }) {
    const now = Date.now();
    this.db
      .query(
        `INSERT INTO machines (name, pool, driver, config, macs, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'off', ?, ?)
         ON CONFLICT (name) DO UPDATE SET pool = excluded.pool, driver = excluded.driver, config = excluded.config, macs = excluded.macs, updated_at = excluded.updated_at`,
      )
      .run(m.name, m.pool, m.driver, JSON.stringify(m.config), JSON.stringify(m.macs), now, now);
  }

  forget(name: string) {
    this.db.query("DELETE FROM machines WHERE name = ?").run(name);
  }

  private set(name: string, fields: Partial<Record<keyof MachineRow, unknown>>) {
    const entries = Object.entries(fields).map(([k, v]) => [k, v !== null && typeof v === "object" ? JSON.stringify(v) : typeof v === "boolean" ? Number(v) : v] as const);
    const sets = entries.map(([k]) => `${k} = ?`).join(", ");
    this.db.query(`UPDATE machines SET ${sets}, updated_at = ? WHERE name = ?`).run(...(entries.map(([, v]) => v) as never[]), Date.now(), name);
  }

  assign(name: string, node: string | null) {
    this.set(name, { node });
  }

  setState(name: string, state: MachineState) {
    this.set(name, { state });
  }

  /**
   * The machine is about to boot the ramdisk: its next lookup is answered
   * (once), with a new token; the old one stops working.
   */
  arm(name: string, command: Command) {
    this.state.write(() => {
      this.set(name, { state: "ramdisk", armed: true, token_hash: null, phase: null, seen_at: null, result: null });
      this.setCommand(name, command);
    });
  }

  /** Armed no more, and no ramdisk token works: the machine left the ramdisk (or is to). */
  disarm(name: string, state: MachineState) {
    this.set(name, { state, armed: false, token_hash: null });
  }

  /** The lookup of an armed machine: its token, issued once. Returns false when it is not armed (any more). */
  issueToken(name: string, tokenHash: string): boolean {
    return this.state.write(() => {
      const m = this.get(name);
      if (!m?.armed) return false;
      this.set(name, { armed: false, token_hash: tokenHash, seen_at: Date.now(), phase: "lookup" });
      return true;
    });
  }

  setCommand(name: string, command: Command) {
    this.db.query("UPDATE machines SET command = ?, command_serial = command_serial + 1, result = NULL, updated_at = ? WHERE name = ?").run(JSON.stringify(CommandV1.parse(command)), Date.now(), name);
  }

  seen(name: string, phase?: string) {
    this.set(name, phase ? { seen_at: Date.now(), phase } : { seen_at: Date.now() });
  }

  recordInventory(name: string, inventory: Inventory) {
    this.set(name, { inventory, seen_at: Date.now(), phase: "inventory" });
  }

  recordResult(name: string, result: RamdiskResult) {
    this.set(name, { result, seen_at: Date.now(), phase: result.status === "failure" ? "failed" : result.step });
  }

  /** Its ramdisk is up, looked up, and asked for a command lately: a command reaches it without a power action (fast track). */
  ramdiskAlive(m: MachineRow, now = Date.now()): boolean {
    return m.state === "ramdisk" && m.token_hash !== null && m.seen_at !== null && now - m.seen_at < RAMDISK_ALIVE_MS;
  }
}

export interface StackMachine {
  name: string;
  pool: string;
  driver: string;
  config: Record<string, unknown>;
  macs: string[];
  standby: boolean;
}

/** The stack file's machines, entry by entry, in order. */
export function stackMachines(stack: Stack): StackMachine[] {
  return Object.entries(stack.inventory).flatMap(([pool, entry]) => {
    const bm = driverFor(entry.driver).bareMetal;
    if (!bm) return [];
    return Object.entries(bm.machines(entry as never)).map(([name, m]) => ({ name, pool, driver: entry.driver, config: entry as Record<string, unknown>, macs: m.macs, standby: m.standby }));
  });
}
