import type { Subprocess } from "bun";
import { SimFleet } from "./fleet.ts";
import type { PowerEvent } from "./sim-driver.ts";
import type { FleetTimings } from "./sim-node.ts";
import { WireStats, type WindowFigures } from "./wire-stats.ts";

/**
 * The simulated fleet in a process of its own (bench/fleet.ts): the load
 * it generates, and the time it spends, do not share an event loop with
 * the deployer being measured — as machines do not. The deployer's side
 * (FleetProcess) tells it power changes and asks it for figures over IPC.
 */
type Request =
  | { op: "power"; event: PowerEvent }
  | { id: number; op: "window"; from: number; to: number }
  | { id: number; op: "nodes" };

export interface FleetNodes {
  /** Node → the serial of its last successful run the service acknowledged, and when (ms since the epoch). */
  succeeded: [string, { serial: number; at: number }][];
  failedRuns: number;
  machines: number;
}

export class FleetProcess {
  private next = 1;
  private readonly waiting = new Map<number, (v: unknown) => void>();
  private constructor(private readonly child: Subprocess) {}

  /**
   * A process that only samples how late its timers run: the machine's
   * own scheduling delay for a process that asks for little CPU (the other
   * developers' VMs share these cores), beside the fleet's.
   */
  static probe(): Promise<FleetProcess> {
    return FleetProcess.spawn(["probe"]);
  }

  static start(stateDir: string, timings: FleetTimings, runDir: string, env: Record<string, string> = {}): Promise<FleetProcess> {
    return FleetProcess.spawn([JSON.stringify({ stateDir, timings, runDir })], env);
  }

  private static async spawn(args: string[], env: Record<string, string> = {}): Promise<FleetProcess> {
    let fleet: FleetProcess;
    let ready: () => void;
    const started = new Promise<void>((r) => (ready = r));
    const child = Bun.spawn(["bun", import.meta.path, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "inherit", "inherit"],
      ipc(message: { id?: number; result?: unknown; ready?: true }) {
        if (message.ready) return ready();
        fleet.waiting.get(message.id!)?.(message.result);
        fleet.waiting.delete(message.id!);
      },
    });
    fleet = new FleetProcess(child);
    await Promise.race([started, child.exited.then((code) => Promise.reject(new Error(`the fleet process ended (exit ${code})`)))]);
    return fleet;
  }

  get pid() {
    return this.child.pid;
  }

  power(event: PowerEvent) {
    this.child.send({ op: "power", event } satisfies Request);
  }

  private ask<T>(request: { op: "window"; from: number; to: number } | { op: "nodes" }): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve) => {
      this.waiting.set(id, resolve as (v: unknown) => void);
      this.child.send({ ...request, id });
    });
  }

  /** Figures of the requests started between two moments (ms since the epoch). */
  window(from: number, to: number) {
    return this.ask<WindowFigures>({ op: "window", from, to });
  }

  nodes() {
    return this.ask<FleetNodes>({ op: "nodes" });
  }

  async stop() {
    this.child.kill();
    await this.child.exited;
  }

  /** For an exit handler: no waiting. */
  kill() {
    this.child.kill();
  }
}

if (import.meta.main) {
  // Stopped by its parent: an orderly exit (a profiler writes its profile then).
  process.on("SIGTERM", () => process.exit(0));
  if (process.argv[2] === "probe") {
    const stats = new WireStats();
    stats.watchLag();
    process.on("message", (m: Request) => void (m.op === "window" && process.send!({ id: m.id, result: stats.window(m.from, m.to) })));
    process.send!({ ready: true });
  } else serveFleet();
}

function serveFleet() {
  const { stateDir, timings, runDir } = JSON.parse(process.argv[2]!) as { stateDir: string; timings: FleetTimings; runDir: string };
  const fleet = new SimFleet(stateDir, timings, runDir);
  process.on("message", (m: Request) => {
    if (m.op === "power") return fleet.power(m.event);
    if (m.op === "window") return process.send!({ id: m.id, result: fleet.stats.window(m.from, m.to) });
    if (m.op === "nodes")
      return process.send!({ id: m.id, result: { succeeded: [...fleet.succeeded], failedRuns: [...fleet.failedRuns.values()].reduce((a, b) => a + b, 0), machines: fleet.machines.size } satisfies FleetNodes });
  });
  process.send!({ ready: true });
}
