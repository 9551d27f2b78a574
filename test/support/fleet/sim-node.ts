import { readFileSync, writeFileSync } from "node:fs";
import { getJson } from "../../../agents/collectors/http.ts";
import { nextSleep } from "../../../agents/collect/loop.ts";
import { parseJson } from "../../../agents/pyjson/parse.ts";
import { isDict, toPlain, type PyValue } from "../../../agents/pyjson/value.ts";
import { Capture } from "../../../agents/refresh/run-parts.ts";
import { buildSignal, sendSignal, signalTarget } from "../../../agents/refresh/signal.ts";
import { progressReporter } from "../../../agents/takeover/progress.ts";
import { keepNodeTrust, nodeFetchTls } from "../../../agents/trust.ts";
import { authorization, metadataUrl, type ConfigDriveMetadata, type NodeMetadata } from "../../../wire/metadata.ts";
import { CompletionSignal, type UpgradeOutcome } from "../../../wire/signal.ts";
import { configDriveFile, diskFile } from "./sim-driver.ts";

/**
 * One simulated machine and its agents, as they behave on the wire: from
 * power-on it "boots", then polls its metadata the way os-collect-config
 * does (the collector's own conditional GET, pauses from
 * min_polling_interval doubling to polling_interval), runs a configuration
 * on every change and signals how it went with os-refresh-config's own
 * signal code (retries included); metadata naming another image makes it
 * take the image over: progress posts (the takeover's reporter), a restart
 * into the new root, and the new root's signal saying so. Only the work
 * itself (booting, running scripts, writing a slot) is a pause.
 */
export interface FleetTimings {
  /** Seconds from power-on to the agents' first poll (drawn uniformly between the two). */
  boot: [number, number];
  /** Seconds a configuration run takes. */
  configure: [number, number];
  /** An in-place upgrade: seconds fetching, writing the slot, and restarting (kexec) into it. */
  takeover: { fetch: number; write: number; restart: number };
}

export interface MachineHost {
  timings: FleetTimings;
  /** The URL the machine's request really goes to (the driver's forward: service address → the host's loopback port). */
  forward(url: string): string;
  /** The service acknowledged this node's configuration run at `serial`. */
  acknowledged(node: string, serial: number, status: "SUCCESS" | "FAILURE"): void;
  /** Run `keep` the first time only (what all the machines share). */
  trustOnce(keep: () => void): void;
}

const between = ([a, b]: [number, number]) => a + Math.random() * (b - a);
/** What a run's scripts print, about what a small role's scripts print (the signal carries it). */
const SCRIPTS = ["pre-configure.d/10-takeover", "configure.d/20-os-apply-config", "configure.d/50-service", "post-configure.d/10-mark-good"];
const OUTPUT = SCRIPTS.map((s) => `[${s}] ${"rendered /etc/example/config.ini ".repeat(20)}\n`).join("");

export class SimMachine {
  /** Raised at every boot and halt: the loops of an earlier boot see it and stop. */
  private generation = 0;
  private halted = new AbortController();

  constructor(
    readonly name: string,
    readonly dir: string,
    private readonly host: MachineHost,
  ) {}

  power(action: "on" | "off" | "reset") {
    if (action !== "on") this.halt();
    if (action !== "off") this.boot(between(this.host.timings.boot));
  }

  halt() {
    this.generation++;
    this.halted.abort();
    this.halted = new AbortController();
  }

  private boot(seconds: number) {
    const generation = ++this.generation;
    const halted = this.halted.signal;
    void pause(seconds, halted).then(() => {
      if (generation === this.generation) return this.agents(generation, halted);
    });
  }

  private disk(): { digest: string; slot: "A" | "B"; upgrade?: UpgradeOutcome } {
    return { slot: "A", ...(JSON.parse(readFileSync(diskFile(this.dir), "utf8")) as { digest: string }) };
  }

  /** os-collect-config's loop, until the machine halts. */
  private async agents(generation: number, halted: AbortSignal) {
    const driveText = readFileSync(configDriveFile(this.dir), "utf8");
    const drive = JSON.parse(driveText) as ConfigDriveMetadata;
    // The config-drive collector keeps what the node trusts for the other agents (the stack's CA alone, no system CAs):
    // the simulated nodes share one run folder, and a stack's nodes all trust the same, so it is kept once.
    this.host.trustOnce(() => keepNodeTrust(parseJson(driveText), undefined, undefined, "/nonexistent"));
    const occ = drive["os-collect-config"];
    const heat = occ.heat!;
    const url = this.host.forward(metadataUrl(heat.metadata_url, heat.node));
    const memo: Record<string, unknown> = {};
    const live = () => generation === this.generation;
    let last: PyValue | undefined;
    let applied = false;
    let sleep = occ.min_polling_interval ?? 1;
    while (live()) {
      let content: PyValue | undefined;
      try {
        // (A halt does not cut a poll short: its answer is dropped.)
        content = await getJson("heat", url, {
          headers: { authorization: authorization(heat.token!) },
          signal: AbortSignal.timeout((heat.timeout ?? 10) * 1000),
          memo,
          ...nodeFetchTls(),
        });
      } catch {}
      if (!live()) return;
      if (content !== undefined && isDict(content) && (content !== last || !applied)) {
        last = content;
        applied = await this.configure(content, heat.token!, generation, halted);
        if (!live()) return;
      }
      await pause(sleep, halted);
      sleep = nextSleep(sleep, occ.polling_interval ?? 30);
    }
  }

  /** os-refresh-config's run on new metadata; true when its signal was taken. */
  private async configure(content: PyValue & Map<string, PyValue>, token: string, generation: number, halted: AbortSignal): Promise<boolean> {
    const metadata = toPlain(content) as NodeMetadata;
    const disk = this.disk();
    if (metadata.ooo.image.digest !== disk.digest) {
      await this.takeover(metadata, token, disk, generation, halted);
      return false;
    }
    const seconds = between(this.host.timings.configure);
    await pause(seconds, halted);
    if (generation !== this.generation) return false;
    const capture = new Capture(1 << 18);
    capture.add("stdout", OUTPUT);
    const outcome = {
      ok: true,
      scripts: SCRIPTS.map((id) => ({ id, status: 0, seconds: seconds / SCRIPTS.length, tail: [] })),
      timedOut: false,
      capture,
      seconds,
    };
    const target = signalTarget({ url: this.host.forward(metadata.ooo.signal_url) }, content, { OOO_SIGNAL_TOKEN: token });
    if (!target) return false;
    const built = buildSignal(outcome, target);
    // What the takeover leaves for the run to report (the real one reads /run/ooo): the root it runs, the upgrade's outcome.
    const body = CompletionSignal.parse({
      ...built,
      data: { ...built.data, node_state: { slot: disk.slot, digest: disk.digest, trial: false, good: true }, ...(disk.upgrade ? { upgrade: disk.upgrade } : {}) },
    });
    try {
      await sendSignal(target, body);
    } catch {
      return false;
    }
    this.host.acknowledged(this.name, target.serial ?? 0, body.status);
    return true;
  }

  /** The takeover: fetch and write the other slot (reporting progress), then restart into it. */
  private async takeover(metadata: NodeMetadata, token: string, disk: ReturnType<SimMachine["disk"]>, generation: number, halted: AbortSignal) {
    const to = metadata.ooo.image.digest;
    const t = this.host.timings.takeover;
    const started = performance.now();
    const forwarded = { ...metadata, ooo: { ...metadata.ooo, signal_url: this.host.forward(metadata.ooo.signal_url) } };
    const report = progressReporter({ metadata: forwarded, token }, to, started);
    const total = 400 << 20;
    await report("checking");
    for (const done of [0, total / 4, total / 2, (3 * total) / 4]) {
      await report("fetching", { bytes_done: done, bytes_total: total });
      await pause(t.fetch / 4, halted);
      if (generation !== this.generation) return;
    }
    await report("writing", { bytes_done: total / 10, bytes_total: total });
    await pause(t.write, halted);
    if (generation !== this.generation) return;
    await report("rebooting");
    const upgrade: UpgradeOutcome = {
      from: disk.digest,
      to,
      result: "upgraded",
      bytes_fetched: total / 10,
      image_bytes: total,
      seconds: (performance.now() - started) / 1000 + t.restart,
      method: "patched",
      restart: "kexec",
    };
    writeFileSync(diskFile(this.dir), JSON.stringify({ digest: to, slot: disk.slot === "A" ? "B" : "A", upgrade }));
    this.halt();
    this.boot(t.restart);
  }
}

/** A pause that a halt cuts short. */
function pause(seconds: number, halted: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (halted.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      halted.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, seconds * 1000);
    halted.addEventListener("abort", done, { once: true });
  });
}
