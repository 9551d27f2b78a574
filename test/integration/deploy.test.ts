import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { parseDocument } from "yaml";
import { capture } from "../../lib/run.ts";
import { buildTestImage, ooo, REPO } from "../support/images.ts";
import { requireCommand, requireRoot } from "../support/require.ts";
import type { Timeline } from "../../deployer/timeline.ts";

/**
 * The deployer on real qemu nodes, booted once and asked many things: a
 * stack of two roles and three nodes (fixtures/stacks/two-roles.yaml) from
 * the test image, published to the stack's embedded store (db-0 on a disk
 * bigger than the image's, booting under UEFI from an inventory entry with
 * boot_mode: uefi; the web nodes under BIOS). Bad stacks are
 * refused before anything runs; the deploy is killed half-way and resumed;
 * every node signals with its own rendered config; a second deploy changes
 * nothing; a metadata change is applied without a reboot while another
 * node's configure.d script fails and is reported by name; the failed node
 * alone is retried; a role is scaled down; `ooo delete` leaves no qemu, no
 * daemon and no disk.
 */
const dir = mkdtempSync(join(tmpdir(), "ooo-deploy-test-"));
const stackFile = join(dir, "two-roles.yaml");
const stateDir = join(dir, ".ooo", "two-roles");
const CLEAN_ENV = { ...process.env, NO_COLOR: "1", OOO_STORE_URL: "", OOO_STORE_TOKEN: "" } as Record<string, string>;

/** Processes whose command line names our state folder (qemu, the daemons). */
function ourProcesses(): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmd.includes(stateDir) && !/^State:\s+Z/m.test(readFileSync(`/proc/${p}/status`, "utf8"))) out.push({ pid: Number(p), cmd });
    } catch {}
  }
  return out;
}
const qemuProcesses = () => ourProcesses().filter((p) => p.cmd.startsWith("qemu-system"));
const pidsByNode = (qemus: { pid: number; cmd: string }[]) => Object.fromEntries(qemus.map((p) => [/-name (\S+)/.exec(p.cmd)![1]!, p.pid]));
const qemuPids = () => pidsByNode(qemuProcesses());

/**
 * qemu's pid per node once every qemu has daemonized: until then a node has two processes with its command
 * line (the starting parent and the VM), and the parent's pid is not the one that stays.
 */
async function settledQemuPids() {
  for (const deadline = Date.now() + 60_000; ; await Bun.sleep(100)) {
    const qemus = qemuProcesses();
    const pids = pidsByNode(qemus);
    if (qemus.length === Object.keys(pids).length) return pids;
    if (Date.now() > deadline) throw new Error(`qemu never settled to one process per node:\n${qemus.map((q) => q.cmd).join("\n")}`);
  }
}

function editStack(edit: (doc: ReturnType<typeof parseDocument>) => void, file = stackFile) {
  const doc = parseDocument(readFileSync(file, "utf8"));
  edit(doc);
  writeFileSync(file, doc.toString());
}

function signals(): { node: string; serial: number; status: string; stdout: string }[] {
  const db = new Database(join(stateDir, "state.db"), { readonly: true });
  try {
    return db
      .query<{ node: string; serial: number; status: string; body: string }, []>("SELECT node, serial, status, body FROM signals ORDER BY node, serial")
      .all()
      .map((r) => ({ node: r.node, serial: r.serial, status: r.status, stdout: (JSON.parse(r.body) as { data: { deploy_stdout: string } }).data.deploy_stdout }));
  } finally {
    db.close();
  }
}

async function deployJson(args: string[] = []) {
  const r = await ooo(["deploy", stackFile, "--json", ...args], { env: CLEAN_ENV });
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  return { ...r, report: last.startsWith("{") ? (JSON.parse(last) as { outcomes: { node: string; action: string; result: string; error?: string }[]; timeline: Timeline; timelineFiles: { html: string; json: string } }) : undefined };
}
const outcome = (r: Awaited<ReturnType<typeof deployJson>>, node: string) => r.report!.outcomes.find((o) => o.node === node)!;

afterAll(async () => {
  // Whatever happened, leave nothing running.
  if (existsSync(join(stateDir, "state.db"))) await ooo(["delete", stackFile], { env: CLEAN_ENV });
  for (const p of ourProcesses()) process.kill(p.pid, "SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("ooo deploy on qemu nodes", () => {
  test(
    "power off to signalled, resumed, idempotent, reconfigured without reboot, failures named, scaled down, deleted clean",
    async () => {
      requireRoot();
      requireCommand("qemu-system-x86_64", "socat", "mkfs.ext4", "sfdisk");
      const image = await buildTestImage("node");
      writeFileSync(stackFile, readFileSync(join(REPO, "fixtures/stacks/two-roles.yaml"), "utf8"));
      editStack((d) => {
        d.setIn(["inventory"], d.createNode({ vms: { driver: "qemu" }, "uefi-vms": { driver: "qemu", boot_mode: "uefi" } }));
        d.setIn(["roles", "web", "inventory"], "vms");
        d.setIn(["roles", "db", "inventory"], "uefi-vms");
      });

      // --- the embedded store, as a person would fill it ---
      const env = await ooo(["store-env", stackFile], { env: CLEAN_ENV });
      expect(env.code).toBe(0);
      const storeEnv = Object.fromEntries([...env.stdout.matchAll(/export (\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
      const pub = await ooo(["publish", image.base, "--tag", "test"], { env: { ...CLEAN_ENV, ...storeEnv } });
      expect(pub.code).toBe(0);

      // --- bad stacks are refused before anything is powered on ---
      const bad = (name: string, edit: (d: ReturnType<typeof parseDocument>) => void) => {
        const f = join(dir, `${name}.yaml`);
        writeFileSync(f, readFileSync(stackFile, "utf8"));
        editStack(edit, f);
        return f;
      };
      const refusals = [
        [bad("unknown-key", (d) => d.setIn(["roles", "web", "imagee"], "x")), /roles\.web\.imagee: unknown key/],
        [bad("count", (d) => d.setIn(["roles", "db", "count"], -1)), /roles\.db\.count: must be ≥ 0/],
        [bad("no-image", (d) => d.deleteIn(["roles", "db", "image"])), /roles\.db\.image: is required/],
        [bad("dup", (d) => (d.setIn(["roles", "web", "name_format"], "n-{index}"), d.setIn(["roles", "db", "name_format"], "n-{index}"))), /duplicate node name n-0/],
        [bad("missing-image", (d) => d.setIn(["roles", "db", "image"], "node@no-such-tag")), /role db: image node@no-such-tag: node has tag test, and version 1/],
      ] as const;
      for (const [file, message] of refusals) {
        const r = await ooo(["deploy", file, "--state-dir", stateDir], { env: CLEAN_ENV });
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(message);
        if (!String(message).includes("no-such-tag")) expect(r.stderr).toMatch(new RegExp(`${file.replaceAll("/", "\\/")}:\\d+ `));
      }
      expect(qemuPids()).toEqual({});
      expect(existsSync(join(stateDir, "nodes")) ? readdirSync(join(stateDir, "nodes")) : []).toEqual([]);

      // --- the first deploy, killed once every node is booting, then resumed ---
      const first = Bun.spawn(["bun", join(REPO, "cli/ooo.ts"), "deploy", stackFile], { env: CLEAN_ENV, stdout: "ignore", stderr: "pipe" });
      for (const deadline = Date.now() + 240_000; Object.keys(qemuPids()).length < 3; await Bun.sleep(200))
        if (Date.now() > deadline || first.exitCode !== null) throw new Error(`the nodes never all powered on:\n${await new Response(first.stderr).text()}`);
      await Bun.sleep(500);
      first.kill("SIGKILL");
      await first.exited;
      const booted = await settledQemuPids();
      expect(Object.keys(booted).sort()).toEqual(["db-0", "web-0", "web-1"]);

      const resumed = await deployJson();
      if (resumed.code !== 0) throw new Error(`the resumed deploy failed:\n${resumed.stderr}`);
      for (const n of ["web-0", "web-1", "db-0"]) {
        expect(outcome(resumed, n)).toMatchObject({ action: "wait", result: "active" });
      }
      expect(qemuPids()).toEqual(booted); // resumed, not redone
      // Each node configured itself from its own metadata (agent-demo prints what it rendered).
      const firstSignals = signals();
      expect(firstSignals.map((s) => `${s.node}:${s.serial}:${s.status}`)).toEqual(["db-0:1:SUCCESS", "web-0:1:SUCCESS", "web-1:1:SUCCESS"]);
      expect(firstSignals.find((s) => s.node === "web-0")!.stdout).toContain("ooo-demo configured: hello web from web-0 (role web)");
      expect(firstSignals.find((s) => s.node === "web-1")!.stdout).toContain("ooo-demo configured: hello web-one from web-1 (role web)");
      expect(firstSignals.find((s) => s.node === "db-0")!.stdout).toContain("ooo-demo configured: hello db from db-0 (role db)");
      // The timeline of the resumed run: every node booted, collected its metadata and signalled; chart and JSON written.
      const tl = resumed.report!.timeline;
      for (const n of tl.nodes) {
        expect(n.result).toBe("active");
        expect(n.marks.map((m) => m.kind)).toEqual(expect.arrayContaining(["booted", "metadata collected", "signalled"]));
      }
      expect(readFileSync(resumed.report!.timelineFiles.html, "utf8")).toContain("<svg");
      // The killed run's steps are part of the resumed run's timeline: image writes and power-ons.
      expect(tl.resumes).toHaveLength(1);
      for (const n of tl.nodes) {
        expect(n.spans.map((s) => s.phase)).toEqual(expect.arrayContaining(["image write", "boot", "configure"]));
        expect(n.seconds).toBeGreaterThan(0);
      }

      // db-0 asked for a bigger disk than the image's: the state partition took the room, and the node booted from it.
      expect(statSync(join(stateDir, "nodes", "db-0", "disk.raw")).size).toBe(3 * 2 ** 30);
      const table = JSON.parse(await capture("sfdisk", ["-J", join(stateDir, "nodes", "db-0", "disk.raw")])) as {
        partitiontable: { partitions: { name: string; start: number; size: number }[] };
      };
      const state = table.partitiontable.partitions.at(-1)!;
      expect(state.name).toBe("ooo-state");
      expect((state.start + state.size) * 512).toBeGreaterThan(3 * 2 ** 30 - 2 ** 20);

      // --- status ---
      const status = await ooo(["status", stackFile, "--json"], { env: CLEAN_ENV });
      const st = JSON.parse(status.stdout) as { nodes: { node: string; state: string; power: string; driver?: Record<string, string> }[]; services: { name: string; state: string }[] };
      expect(st.nodes.map((n) => `${n.node} ${n.state} ${n.power}`).sort()).toEqual(["db-0 active on", "web-0 active on", "web-1 active on"]);
      // db-0 booted through OVMF with its own variable store, the web nodes through SeaBIOS.
      expect(st.nodes.map((n) => `${n.node} ${n.driver?.firmware}`).sort()).toEqual(["db-0 uefi", "web-0 bios", "web-1 bios"]);
      expect(existsSync(join(stateDir, "nodes", "db-0", "ovmf-vars.fd"))).toBe(true);
      expect(readFileSync(join(stateDir, "nodes", "db-0", "console.log"), "utf8")).toContain("BdsDxe: starting");
      expect(readFileSync(join(stateDir, "nodes", "web-0", "console.log"), "utf8")).not.toContain("BdsDxe");
      expect(st.services.every((s) => s.state.startsWith("running"))).toBe(true);
      // The stack's services speak https with its own CA (made on this first deploy), which the nodes trusted to signal.
      expect(st.services.map((s) => s.state.match(/\w+(?=:\/\/127)/)?.[0])).toEqual(["https", "https"]);
      expect(statSync(join(stateDir, "tls", "ca.key")).mode & 0o777).toBe(0o600);

      // --- again: nothing to do ---
      const again = await deployJson();
      expect(again.code).toBe(0);
      expect(again.report!.outcomes.every((o) => o.action === "none" && o.result === "unchanged")).toBe(true);
      expect(again.stderr).toContain("nothing to do: 3 nodes up to date");
      expect(qemuPids()).toEqual(booted);

      // --- a metadata change (web-1) and a configuration that fails (db-0), in one deploy ---
      const consoleOf = (n: string) => readFileSync(join(stateDir, "nodes", n, "console.log"), "utf8");
      const readyLines = (n: string) => consoleOf(n).split("OOO-READY").length - 1;
      const readyBefore = readyLines("web-1");
      editStack((d) => {
        d.setIn(["roles", "web", "nodes", "web-1", "metadata", "greeting", "name"], "changed");
        d.setIn(["roles", "db", "metadata", "greeting", "name"], "fail-please");
      });
      const changed = await deployJson();
      expect(changed.code).not.toBe(0);
      expect(outcome(changed, "web-0")).toMatchObject({ action: "none", result: "unchanged" });
      expect(outcome(changed, "web-1")).toMatchObject({ action: "redeliver", result: "active" });
      expect(outcome(changed, "db-0")).toMatchObject({ action: "redeliver", result: "failed" });
      expect(outcome(changed, "db-0").error).toContain("configure.d/50-ooo-demo failed (exit 3)");
      expect(outcome(changed, "db-0").error).toContain("ooo-demo: asked to fail");
      expect(changed.stderr).toContain("configure.d/50-ooo-demo");
      expect(signals().find((s) => s.node === "web-1" && s.serial === 2)!.stdout).toContain("hello changed from web-1 (role web)");
      // Applied without a reboot: the same qemu, no new ready line, no power event in the run.
      expect(qemuPids()).toEqual(booted);
      expect(readyLines("web-1")).toBe(readyBefore);
      expect(changed.report!.timeline.nodes.find((n) => n.node === "web-1")!.marks.map((m) => m.kind)).not.toContain("power-on");
      const failedStatus = await ooo(["status", stackFile], { env: CLEAN_ENV });
      expect(failedStatus.stdout).toMatch(/db-0\s+db\s+failed\s+on/);

      // --- fixed, deployed again: only the failed node is retried ---
      editStack((d) => d.setIn(["roles", "db", "metadata", "greeting", "name"], "db"));
      const retried = await deployJson();
      if (retried.code !== 0) throw new Error(`the retry failed:\n${retried.stderr}`);
      expect(outcome(retried, "db-0")).toMatchObject({ action: "redeliver", result: "active" });
      expect(outcome(retried, "web-0").action).toBe("none");
      expect(outcome(retried, "web-1").action).toBe("none");

      // --- scale down: web-1 goes, machine and disk ---
      const scaled = await ooo(["scale", stackFile, "web=1", "--json"], { env: CLEAN_ENV });
      expect(scaled.code).toBe(0);
      expect(readFileSync(stackFile, "utf8")).toMatch(/web:\n(.*\n)*?\s+count: 1\n/);
      expect(readFileSync(stackFile, "utf8")).toContain("# The deployer's integration test"); // comments kept
      expect(Object.keys(qemuPids()).sort()).toEqual(["db-0", "web-0"]);
      expect(existsSync(join(stateDir, "nodes", "web-1"))).toBe(false);

      // --- delete: no qemu, no daemon, no disk ---
      const del = await ooo(["delete", stackFile], { env: CLEAN_ENV });
      expect(del.code).toBe(0);
      expect(ourProcesses()).toEqual([]);
      expect(readdirSync(join(stateDir, "nodes"))).toEqual([]);
      for (const f of ["metadata.pid", "store/store.pid"]) expect(existsSync(join(stateDir, f))).toBe(false);
    },
    20 * 60_000,
  );
});
