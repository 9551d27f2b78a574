import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deploy } from "../../deployer/deploy.ts";
import { StateDb } from "../../deployer/state.ts";
import { FleetProcess } from "../support/fleet/fleet-process.ts";
import { fleetStack, publishFleetImage, stopFleetServices, type FleetStack } from "../support/fleet/fleet-stack.ts";
import { requireCommand } from "../support/require.ts";

/**
 * Issue 28: nodes signalling while the deployer writes. A few hundred
 * simulated nodes (test/support/fleet/: only the machines are simulated;
 * the metadata service is the real daemon, the deploy the real code) boot
 * within a second or two of their power-on, so most of them fetch their
 * metadata and signal while `ooo deploy` is still writing the others'
 * records — the moment SQLite answered "database is locked" at once, the
 * signal got a 500 and the deploy reported nodes failed that had
 * signalled success. Not timed: the assertion is that nothing the nodes
 * did was lost or misreported.
 */
const NODES = 500;
const dir = mkdtempSync(join(tmpdir(), "ooo-fleet-signals-"));
let f: FleetStack | undefined;
let fleet: FleetProcess | undefined;

afterAll(async () => {
  await fleet?.stop();
  if (f) await stopFleetServices(f);
  rmSync(dir, { recursive: true, force: true });
});

test(`${NODES} nodes signalling while the deployer writes: none reported failed that signalled success`, async () => {
  requireCommand("openssl");
  f = await fleetStack(dir, { nodes: NODES, pollingSeconds: 2, signalTimeout: "30s" }, (e) => fleet?.power(e));
  await publishFleetImage(f, 1);
  // The machines in a process of their own, as they are: they signal whatever the deployer is doing.
  const sim = await FleetProcess.start(f.stateDir, { boot: [0.2, 2], configure: [0, 0.3], takeover: { fetch: 0, write: 0, restart: 0 } }, join(dir, "run"));
  fleet = sim;

  const report = await deploy(f.file, { stack: f.stack });
  const wire = await sim.window(0, Date.now() + 1);
  const succeeded = new Map((await sim.nodes()).succeeded);

  const db = StateDb.open(f.stateDir, { create: false });
  try {
    const serial = new Map(db.nodes().map((r) => [r.name, r.serial]));
    // Whatever else went wrong, a node whose successful run the service acknowledged is never reported failed.
    const falselyFailed = report.outcomes.filter((o) => o.result === "failed" && succeeded.get(o.node)?.serial === serial.get(o.node));
    expect(falselyFailed.map((o) => `${o.node}: ${o.error}`)).toEqual([]);
    // Nothing in this fleet fails: every node was deployed, signalled, and is active.
    expect(report.outcomes.filter((o) => o.result !== "active").map((o) => `${o.node}: ${o.result} ${o.error ?? ""}`)).toEqual([]);
    expect([...serial].filter(([name, s]) => succeeded.get(name)?.serial !== s).map(([name]) => name)).toEqual([]);
    expect(db.nodes().filter((r) => r.state !== "active").map((r) => `${r.name}: ${r.state}`)).toEqual([]);
    // The nodes never met a server error (a 500 after the signal was recorded was how it went wrong).
    expect({ signal5xx: wire.kinds.signal.http_5xx, metadata5xx: wire.kinds.metadata.http_5xx }).toEqual({ signal5xx: 0, metadata5xx: 0 });
  } finally {
    db.close();
  }
}, 120_000);
