import { table } from "../../lib/log.ts";
import type { Inventory } from "../../wire/deploy.ts";
import type { MachineRow } from "./machines.ts";

/** The machines as `ooo enroll` and `ooo status` show them: who runs on each, where its ramdisk is, what hardware it reported. */
export interface MachineStatus {
  machine: string;
  pool: string;
  driver: string;
  state: string;
  node?: string;
  phase?: string;
  hardware?: string;
  inventory?: Inventory;
  lastResult?: string;
}

const GiB = 2 ** 30;

export function hardwareText(inv: Inventory): string {
  const disks = inv.disks.map((d) => `${d.name} ${(d.size / GiB).toFixed(1)}G${d.serial ? ` ${d.serial}` : ""}`).join(", ");
  return `${inv.cpus.count} CPU, ${(inv.memory_bytes / GiB).toFixed(1)} GiB, ${inv.boot_mode}; disks ${disks || "none"}; NICs ${inv.nics.map((n) => n.mac).join(", ")}`;
}

export function machineStatus(m: MachineRow): MachineStatus {
  return {
    machine: m.name,
    pool: m.pool,
    driver: m.driver,
    state: m.state,
    ...(m.node ? { node: m.node } : {}),
    // The ramdisk's phase while the machine is in it; after, only a failure says something still (a machine running its node has no ramdisk).
    ...(m.phase && (m.state === "ramdisk" || m.phase === "failed") ? { phase: m.phase } : {}),
    ...(m.inventory ? { hardware: hardwareText(m.inventory), inventory: m.inventory } : {}),
    ...(m.result ? { lastResult: `${m.result.action} ${m.result.status} at ${m.result.step}${m.result.status === "failure" ? `: ${m.result.message.split("\n")[0]}` : ""}` } : {}),
  };
}

export function machinesTable(machines: MachineStatus[]): string {
  return table(
    ["machine", "inventory", "driver", "state", "node", "ramdisk", "hardware"],
    machines.map((m) => [m.machine, m.pool, m.driver, m.state, m.node ?? "-", m.phase ?? "-", m.hardware ?? "not reported yet"]),
  );
}
