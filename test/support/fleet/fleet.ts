import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PORT_FILE } from "../../../deployer/metadata-service.ts";
import { SIM_SERVICE_ADDRESS, type PowerEvent } from "./sim-driver.ts";
import { SimMachine, type FleetTimings, type MachineHost } from "./sim-node.ts";
import { instrumentFetch, WireStats } from "./wire-stats.ts";

/**
 * A simulated fleet: the machines of one stack (sim-driver.ts powers them),
 * each running agents that behave like ooo's on the wire (sim-node.ts), all
 * in this process. Their requests are timed (wire-stats.ts); the fleet
 * remembers which configuration runs the service acknowledged.
 *
 * The machines reach the metadata service as qemu's guests do: at the
 * service address of the driver, forwarded to the port the service
 * publishes in its port file (read again every second, as the qemu
 * forward reads it at every connection).
 */
export class SimFleet implements MachineHost {
  readonly stats = new WireStats();
  readonly machines = new Map<string, SimMachine>();
  /** Per node, the last serial whose successful run the service acknowledged, and when (Date.now()). */
  readonly succeeded = new Map<string, { serial: number; at: number }>();
  readonly failedRuns = new Map<string, number>();
  private port?: { value: number; readAt: number };
  private readonly restore: () => void;

  constructor(
    readonly stateDir: string,
    readonly timings: FleetTimings,
    /** The nodes' run folder (OOO_RUN_DIR: the CA the config drive gives them). */
    runDir: string,
  ) {
    mkdirSync(runDir, { recursive: true });
    process.env.OOO_RUN_DIR = runDir;
    this.restore = instrumentFetch(this.stats);
    this.stats.watchLag();
  }

  power(e: PowerEvent) {
    let m = this.machines.get(e.node);
    if (!m) this.machines.set(e.node, (m = new SimMachine(e.node, e.dir, this)));
    m.power(e.action);
  }

  forward(url: string): string {
    const u = new URL(url);
    if (u.hostname !== SIM_SERVICE_ADDRESS.metadata) return url;
    const now = Date.now();
    if (!this.port || now - this.port.readAt > 1000) this.port = { value: Number(readFileSync(join(this.stateDir, PORT_FILE), "utf8").trim()), readAt: now };
    u.hostname = "127.0.0.1";
    u.port = String(this.port.value);
    return u.href;
  }

  private trustKept = false;
  trustOnce(keep: () => void) {
    if (this.trustKept) return;
    keep();
    this.trustKept = true;
  }

  acknowledged(node: string, serial: number, status: "SUCCESS" | "FAILURE") {
    if (status === "SUCCESS") this.succeeded.set(node, { serial, at: Date.now() });
    else this.failedRuns.set(node, (this.failedRuns.get(node) ?? 0) + 1);
  }

  /** Halt every machine (their loops end at their next step) and stop timing fetches. */
  stop() {
    for (const m of this.machines.values()) m.halt();
    this.stats.stop();
    this.restore();
  }
}
