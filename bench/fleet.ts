#!/usr/bin/env bun
/**
 * One deployer for a fleet (issue 28): N simulated nodes deployed by the
 * real deploy code, polling the real metadata service (its own daemon, as
 * `ooo deploy` starts it), then `ooo status` and the deploy's timeline; and
 * a rolling `ooo upgrade` of a role of --upgrade-nodes nodes in batches.
 *
 *   bun bench/fleet.ts [--nodes 1000,3000,10000] [--steady 60] [--settle 15] [--polling 5]
 *                      [--boot 10,30] [--configure 2,5] [--upgrade-nodes 1000] [--batch 50] [--keep]
 *
 * Only the machines are simulated (test/support/fleet/): a driver whose
 * machines are a folder and a power switch, and agents that behave like
 * ooo's on the wire — built from the agents' own request code: the heat
 * collector's conditional GET with its pauses (1 s doubling to the
 * polling interval, 5 s by default as the stack's default), the
 * os-refresh-config signal with its retries, the takeover's progress
 * posts. They run in a process of their own that times every request
 * to its response headers (so the figures are what the nodes saw, retries
 * included). Booting and running scripts are pauses (--boot, --configure
 * seconds, drawn uniformly). The simulated fleet shares Bun's connection
 * pool (a few hundred connections) where real nodes hold one each.
 *
 * Per N: deploy from nothing, then --settle seconds for the polls to reach
 * their interval, then --steady seconds measured (the GET p50/p99/max of
 * the JSON's steady_* figures); the signals' figures are the deploy's.
 * Deploy wall time runs from registration (the first node recorded) to the
 * last node's acknowledged signal. Service CPU is the metadata daemon's
 * (utime+stime from /proc) over a phase; its peak RSS is VmHWM. `ooo
 * status` runs as a command (the simulated driver preloaded); the timeline
 * is built, tabled and written as `ooo deploy` does. A false failure is a
 * node the deploy reported failed whose run the service acknowledged as
 * successful, or which is active in the end. "fleet lag" is how late the
 * load generator's own timers ran: latency it adds to what it measures;
 * "probe lag" the same in an idle process of its own: how long this
 * machine (its cores shared with other developers' VMs) keeps a process
 * that wakes up from running.
 *
 * The machine is shared: the load average is printed with each row. Prints
 * a table, then as its LAST line one JSON object for the largest N.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { deploy, type DeployReport } from "../deployer/deploy.ts";
import { daemonPid } from "../deployer/daemons.ts";
import { metadataDaemon } from "../deployer/services.ts";
import { StateDb } from "../deployer/state.ts";
import { buildTimeline, timelineTable, writeTimeline } from "../deployer/timeline.ts";
import { upgrade, type UpgradeReport } from "../deployer/upgrade.ts";
import { log, table } from "../lib/log.ts";
import { FleetProcess } from "../test/support/fleet/fleet-process.ts";
import { fleetStack, killFleetServices, publishFleetImage, stopFleetServices, type FleetStack } from "../test/support/fleet/fleet-stack.ts";
import type { FleetTimings } from "../test/support/fleet/sim-node.ts";
import type { KindFigures, WindowFigures } from "../test/support/fleet/wire-stats.ts";
import { flag, hasFlag, r1 } from "./figures.ts";

const REPO = resolve(import.meta.dir, "..");
const sizes = flag("nodes", "1000,3000,10000").split(",").map(Number);
const steadySeconds = Number(flag("steady", "60"));
const settleSeconds = Number(flag("settle", "15"));
const pollingSeconds = Number(flag("polling", "5"));
const upgradeNodes = Number(flag("upgrade-nodes", "1000"));
const batch = Number(flag("batch", "50"));
const keep = hasFlag("keep");
const range = (s: string) => s.split(",").map(Number) as [number, number];
const timings: FleetTimings = { boot: range(flag("boot", "10,30")), configure: range(flag("configure", "2,5")), takeover: { fetch: 2, write: 1, restart: 3 } };
if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--nodes takes counts, comma-separated (got ${flag("nodes", "")})`);

/** The simulated machines' power switch: the fleet process of the run under way. */
let fleetNow: FleetProcess | undefined;

/** Interrupted (the deploy's own Ctrl-C handling exits the process): no daemon, fleet or folder is left behind. */
let leftovers: (() => void) | undefined;
let probe: FleetProcess | undefined;
process.on("exit", () => {
  leftovers?.();
  probe?.kill();
});

const say = (text: string) => process.stderr.write(`[fleet] ${text}\n`);
const loadAverage = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

/** CPU seconds (user + system) a process has used, and its peak RSS in MiB. */
function processFigures(pid: number | undefined): { cpu: number; peakMiB: number } {
  if (pid === undefined) return { cpu: 0, peakMiB: 0 };
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return { cpu: (Number(fields[11]) + Number(fields[12])) / 100, peakMiB: hwm ? Number(hwm[1]) / 1024 : 0 };
  } catch {
    return { cpu: 0, peakMiB: 0 };
  }
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, (performance.now() - t0) / 1000];
}

interface Row {
  nodes: number;
  load: number;
  deploySeconds: number;
  allSignalledSeconds: number;
  signalled: number;
  reportedFailed: number;
  falseFailures: number;
  deploy: WindowFigures;
  steady: WindowFigures;
  /** The lag probe's figures over the steady window. */
  machineLag: WindowFigures;
  http5xx: number;
  noAnswer: number;
  serviceCpuDeploy: number;
  /** CPU seconds of `ooo deploy` itself (this process) during the deploy. */
  deployerCpu: number;
  serviceCpuSteadyPercent: number;
  fleetCpuSteadyPercent: number;
  servicePeakMiB: number;
  statusSeconds: number;
  timelineSeconds: number;
  upgrade?: UpgradeFigures;
}

interface UpgradeFigures {
  nodes: number;
  batches: number;
  seconds: number;
  upgraded: number;
  notUpgraded: number;
  batchSeconds: { mean: number; max: number };
  window: WindowFigures;
  http5xx: number;
}

const errors5xx = (w: WindowFigures) => Object.values(w.kinds).reduce((a, k) => a + k.http_5xx, 0);
const noAnswer = (w: WindowFigures) => Object.values(w.kinds).reduce((a, k) => a + k.no_answer, 0);

/** Nodes the deploy said failed although their run succeeded (acknowledged by the service, or active in the end). */
function falseFailures(r: DeployReport, db: StateDb, succeeded: Map<string, { serial: number }>) {
  return r.outcomes.filter((o) => {
    if (o.result !== "failed") return false;
    const row = db.node(o.node);
    return row?.state === "active" || (row !== undefined && succeeded.get(o.node)?.serial === row.serial);
  });
}

async function runFleet(n: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), `ooo-bench-fleet-${n}-`));
  let fleet: FleetProcess | undefined;
  let f: FleetStack | undefined;
  leftovers = () => {
    fleet?.kill();
    if (f) killFleetServices(f);
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  try {
    f = await fleetStack(dir, { nodes: n, pollingSeconds, batch }, (e) => fleetNow?.power(e));
    const v1 = await publishFleetImage(f, 1);
    fleet = await FleetProcess.start(f.stateDir, timings, join(dir, "run"), { NODE_EXTRA_CA_CERTS: join(f.stateDir, "tls", "ca.pem") });
    fleetNow = fleet;
    say(`${n} nodes: deploying ${v1.slice(0, 19)}… (boot ${timings.boot.join("–")} s, configure ${timings.configure.join("–")} s, polling ${pollingSeconds} s)`);
    const problems: string[] = [];
    const detach = log.addSink({ write: (e) => void (e.kind === "error" && problems.length < 5 && problems.push(e.text)) });
    const t0 = Date.now();
    const ownCpu0 = process.cpuUsage();
    const [report, deploySeconds] = await timed(() => deploy(f!.file, { stack: f!.stack })).finally(detach);
    const t1 = Date.now();
    const servicePid = daemonPid(metadataDaemon(f.stateDir));
    const serviceCpuDeploy = processFigures(servicePid).cpu;
    const own = process.cpuUsage(ownCpu0);
    const deployerCpu = (own.user + own.system) / 1e6;
    const nodes = await fleet.nodes();
    const succeeded = new Map(nodes.succeeded);
    const db = StateDb.open(f.stateDir, { create: false });
    try {
      const rows = db.nodes();
      const signalled = rows.filter((r) => succeeded.get(r.name)?.serial === r.serial).length;
      const lastAck = Math.max(...[...succeeded.values()].map((s) => s.at));
      // Registration: the deploy's first node recorded (what comes before it is the deploy's checking).
      const registered = db.db.query<{ at: number }, [number]>("SELECT MIN(at) AS at FROM events WHERE run = ? AND to_state = 'new'").get(report.run)!.at;
      const falses = falseFailures(report, db, succeeded);
      const failed = report.outcomes.filter((o) => o.result === "failed");
      say(`${n} nodes: deployed in ${r1(deploySeconds)} s; ${signalled} signalled, ${failed.length} reported failed (${falses.length} falsely)${problems.length ? `; first errors: ${problems.join(" | ")}` : ""}`);

      say(`${n} nodes: settling ${settleSeconds} s, then ${steadySeconds} s of steady polling`);
      await Bun.sleep(settleSeconds * 1000);
      const load = loadAverage();
      const s0 = Date.now();
      const cpu0 = processFigures(servicePid).cpu;
      const fcpu0 = processFigures(fleet.pid).cpu;
      await Bun.sleep(steadySeconds * 1000);
      const s1 = Date.now();
      const serviceCpuSteadyPercent = r1(((processFigures(servicePid).cpu - cpu0) / ((s1 - s0) / 1000)) * 100);
      const fleetCpuSteadyPercent = r1(((processFigures(fleet.pid).cpu - fcpu0) / ((s1 - s0) / 1000)) * 100);
      const [deployWindow, steady, machineLag] = [await fleet.window(t0, t1), await fleet.window(s0, s1), await probe!.window(s0, s1)];

      // `ooo status` as a user runs it, while the fleet goes on polling.
      const [status, statusSeconds] = await timed(async () => {
        const p = Bun.spawn(["bun", "--preload", join(REPO, "test/support/fleet/register-sim.ts"), join(REPO, "cli/ooo.ts"), "status", f!.file], {
          cwd: REPO,
          env: { ...process.env, NO_COLOR: "1" },
          stdout: "pipe",
          stderr: "pipe",
        });
        const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
        if (code !== 0) throw new Error(`ooo status failed (exit ${code}):\n${err}`);
        return out;
      });
      const activeInStatus = status.split("\n").filter((l) => / active /.test(l)).length;
      // The deploy's timeline as `ooo deploy` makes it: built, tabled, written (JSON and the HTML chart).
      const [timeline, timelineSeconds] = await timed(async () => {
        const t = buildTimeline(db, report.run, f!.stack.name);
        timelineTable(t);
        await writeTimeline(t, join(dir, "timeline"));
        return t;
      });
      say(`${n} nodes: ooo status ${statusSeconds.toFixed(2)} s (${activeInStatus} active), timeline ${timelineSeconds.toFixed(2)} s (${timeline.nodes.length} nodes)`);

      const all = await fleet.window(t0, Date.now());
      const row: Row = {
        nodes: n,
        load,
        deploySeconds,
        allSignalledSeconds: (lastAck - registered) / 1000,
        signalled,
        reportedFailed: failed.length,
        falseFailures: falses.length,
        deploy: deployWindow,
        steady,
        machineLag,
        http5xx: errors5xx(all),
        noAnswer: noAnswer(all),
        serviceCpuDeploy,
        deployerCpu,
        serviceCpuSteadyPercent,
        fleetCpuSteadyPercent,
        servicePeakMiB: 0,
        statusSeconds,
        timelineSeconds,
      };
      if (n === upgradeNodes) row.upgrade = await rollingUpgrade(f, fleet, n);
      row.servicePeakMiB = processFigures(servicePid).peakMiB;
      return row;
    } finally {
      db.close();
    }
  } finally {
    await fleet?.stop();
    if (f) await stopFleetServices(f);
    if (keep) say(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
    leftovers = undefined;
  }
}

/** `ooo upgrade` of the whole role to a new version, in batches of --batch. */
async function rollingUpgrade(f: FleetStack, fleet: FleetProcess, n: number): Promise<UpgradeFigures> {
  const v2 = await publishFleetImage(f, 2);
  say(`${n} nodes: rolling upgrade to ${v2.slice(0, 19)}… in batches of ${batch}`);
  const t0 = Date.now();
  const [r, seconds] = await timed(() => upgrade(f.file, { stack: f.stack }));
  const window = await fleet.window(t0, Date.now());
  const batches = new Map<number, number>();
  for (const u of r.nodes) batches.set(u.batch, Math.max(batches.get(u.batch) ?? 0, u.seconds));
  const per = [...batches.values()];
  const upgraded = r.nodes.filter((u) => u.result === "upgraded").length;
  say(`${n} nodes: upgraded ${upgraded} in ${r1(seconds)} s (${batches.size} batches)${r.stoppedAt ? `; stopped at batch ${r.stoppedAt.batch}` : ""}`);
  return {
    nodes: r.nodes.length,
    batches: batches.size,
    seconds: r1(seconds),
    upgraded,
    notUpgraded: r.nodes.length - upgraded,
    batchSeconds: { mean: r1(per.reduce((a, b) => a + b, 0) / Math.max(per.length, 1)), max: r1(Math.max(0, ...per)) },
    window,
    http5xx: errors5xx(window),
  } satisfies UpgradeFigures as UpgradeFigures & { report?: UpgradeReport };
}

const rows: Row[] = [];
probe = await FleetProcess.probe();
try {
  for (const n of sizes) rows.push(await runFleet(n));
} finally {
  await probe.stop();
}

const lat = (k: KindFigures) => `${k.p50_ms}/${k.p99_ms}/${k.max_ms}`;
process.stderr.write(
  "\n" +
    table(
      ["nodes", "load", "req/s", "GET p50/p99/max ms", "fleet lag p99/max ms", "probe lag p99/max ms", "signal p50/p99/max ms", "deploy GET p99 ms", "svc CPU % (steady)", "svc CPU s (deploy)", "deploy CPU s", "svc peak MiB", "deploy s", "registered→all signalled s", "signalled", "false failures", "5xx", "no answer", "status s", "timeline s"],
      rows.map((r) => [
        r.nodes,
        r.load,
        r.steady.requests_per_second,
        lat(r.steady.kinds.metadata),
        `${r.steady.lag_p99_ms}/${r.steady.lag_max_ms}`,
        `${r.machineLag.lag_p99_ms}/${r.machineLag.lag_max_ms}`,
        lat(r.deploy.kinds.signal),
        r.deploy.kinds.metadata.p99_ms,
        r.serviceCpuSteadyPercent,
        r1(r.serviceCpuDeploy),
        r1(r.deployerCpu),
        r1(r.servicePeakMiB),
        r1(r.deploySeconds),
        r1(r.allSignalledSeconds),
        `${r.signalled}/${r.nodes}`,
        r.falseFailures,
        r.http5xx,
        r.noAnswer,
        Math.round(r.statusSeconds * 100) / 100,
        Math.round(r.timelineSeconds * 100) / 100,
      ]),
    ) +
    "\n",
);
for (const r of rows.filter((x) => x.upgrade)) {
  const u = r.upgrade!;
  process.stderr.write(
    `\nrolling upgrade of ${u.nodes} nodes in ${u.batches} batches of ${batch}: ${u.seconds} s (batch mean ${u.batchSeconds.mean} s, max ${u.batchSeconds.max} s); ` +
      `${u.upgraded} upgraded, ${u.notUpgraded} not; signals p50/p99/max ${lat(u.window.kinds.signal)} ms, progress posts ${u.window.kinds.progress.count} (p99 ${u.window.kinds.progress.p99_ms} ms), 5xx ${u.http5xx}\n`,
  );
}
const big = rows.reduce((a, b) => (b.nodes > a.nodes ? b : a));
const summary = {
  bench: "fleet",
  nodes: big.nodes,
  polling_seconds: pollingSeconds,
  steady_seconds: steadySeconds,
  steady_requests_per_second: big.steady.requests_per_second,
  steady_p50_ms: big.steady.kinds.metadata.p50_ms,
  steady_p99_ms: big.steady.kinds.metadata.p99_ms,
  steady_max_ms: big.steady.kinds.metadata.max_ms,
  steady_fleet_lag_p99_ms: big.steady.lag_p99_ms,
  steady_probe_lag_p99_ms: big.machineLag.lag_p99_ms,
  steady_probe_lag_max_ms: big.machineLag.lag_max_ms,
  signal_p50_ms: big.deploy.kinds.signal.p50_ms,
  signal_p99_ms: big.deploy.kinds.signal.p99_ms,
  signal_max_ms: big.deploy.kinds.signal.max_ms,
  false_failures: big.falseFailures,
  reported_failed: big.reportedFailed,
  http_5xx: big.http5xx,
  no_answer: big.noAnswer,
  signalled: big.signalled,
  deploy_seconds: r1(big.deploySeconds),
  all_signalled_seconds: r1(big.allSignalledSeconds),
  service_cpu_percent: big.serviceCpuSteadyPercent,
  service_cpu_seconds_deploy: r1(big.serviceCpuDeploy),
  deployer_cpu_seconds: r1(big.deployerCpu),
  service_peak_rss_mib: r1(big.servicePeakMiB),
  fleet_cpu_percent: big.fleetCpuSteadyPercent,
  status_seconds: Math.round(big.statusSeconds * 100) / 100,
  timeline_seconds: Math.round(big.timelineSeconds * 100) / 100,
  load_average: big.load,
  targets: { steady_p99_ms: 50, false_failures: 0, http_5xx: 0, status_seconds: 2, timeline_seconds: 2 },
  runs: rows.map((r) => ({ nodes: r.nodes, load: r.load, steady_p99_ms: r.steady.kinds.metadata.p99_ms, false_failures: r.falseFailures, http_5xx: r.http5xx, signalled: r.signalled, status_seconds: Math.round(r.statusSeconds * 100) / 100, timeline_seconds: Math.round(r.timelineSeconds * 100) / 100 })),
  upgrade: rows.find((r) => r.upgrade)?.upgrade
    ? (({ window, ...u }) => ({ ...u, signal_p99_ms: window.kinds.signal.p99_ms, progress_posts: window.kinds.progress.count }))(rows.find((r) => r.upgrade)!.upgrade!)
    : null,
};
process.stdout.write(JSON.stringify(summary) + "\n");
