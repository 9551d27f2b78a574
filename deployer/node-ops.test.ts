import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import type { NodeDriver, PowerState } from "./drivers/driver.ts";
import { DRIVERS } from "./drivers/index.ts";
import type { ImageCache } from "./images.ts";
import { resumePoweredOn, waitForSignal, type NodeContext } from "./node-ops.ts";
import { consoleTail } from "./node-watch.ts";
import type { StackStore } from "./services.ts";
import { StateDb } from "./state.ts";
import { buildTimeline } from "./timeline.ts";

/** A driver whose machine is a console file and a power switch, to test the waiting without qemu. */
let power: PowerState = "on";
let consoleFile = "";
const fake: NodeDriver = {
  name: "fake",
  pool: z.object({ driver: z.literal("fake") }),
  check: async () => [],
  serviceUrl: (s) => `http://${s}.test`,
  provision: async () => {},
  powerState: async () => power,
  setPower: async (_, t) => void (power = t === "off" ? "off" : "on"),
  consoleLog: () => consoleFile,
  destroy: async () => {},
  describe: async () => ({}),
  endpoint: () => undefined,
};
DRIVERS.fake = fake;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(timeoutSeconds = 30) {
  const dir = mkdtempSync(join(tmpdir(), "ooo-node-ops-test-"));
  dirs.push(dir);
  consoleFile = join(dir, "console.log");
  const earlier = 'an earlier boot\nOOO-READY {"old":true}\n';
  writeFileSync(consoleFile, earlier);
  const offset = earlier.length;
  power = "on";
  const db = StateDb.open(dir);
  db.createNode({ name: "n-0", role: "n", idx: 0, pool: "p", driver: "fake", size: { memoryMiB: 512, cpus: 1 } });
  for (const to of ["writing-image", "powering-on", "booting"] as const) db.transition("n-0", to);
  db.update("n-0", { serial: 1, powered_on_at: Date.now(), waiting_since: Date.now(), console_offset: offset });
  const ctx: NodeContext = {
    db,
    run: db.startRun("deploy"),
    stateDir: dir,
    cache: {} as ImageCache,
    store: {} as StackStore,
    services: [],
    signalTimeoutSeconds: timeoutSeconds,
    pollingIntervalSeconds: 5,
  };
  return { db, ctx };
}

const READY = `OOO-READY {"slot":"A","trial":0,"rootReadOnly":true,"state":{"kind":"partition","device":"/dev/vda5","mounted":true,"writable":true},"statePaths":[],"failedUnits":[],"uptime":12.5}\n`;

describe("waiting for a node", () => {
  test("the ready line is noted (only this boot's), then the signal ends the wait", async () => {
    const { db, ctx } = setup();
    const waiting = waitForSignal(ctx, "n-0");
    await Bun.sleep(400);
    expect(db.events({ node: "n-0" }).some((e) => e.kind === "booted")).toBe(false); // the old boot's line is before the offset
    appendFileSync(consoleFile, `Debian GNU/Linux 12\n${READY}`);
    await Bun.sleep(400);
    expect(db.node("n-0")!.state).toBe("configuring");
    expect(db.events({ node: "n-0" }).find((e) => e.kind === "booted")!.detail).toMatchObject({ uptime: 12.5, slot: "A" });
    db.transition("n-0", "active", { fields: { signalled_serial: 1 } }); // as the metadata service does
    expect(await waiting).toEqual({ ok: true });
  });

  test("no signal in time: failed, with the console's tail in the error", async () => {
    const { db, ctx } = setup(1);
    appendFileSync(consoleFile, "\x1b[1;1Hooo: booting slot A\nKernel panic - not syncing: VFS\n");
    const r = await waitForSignal(ctx, "n-0");
    expect(r.ok).toBe(false);
    const error = (r as { error: string }).error;
    expect(error).toStartWith("no completion signal within 1s (no ready line on its console, metadata never collected); last console lines:\n");
    expect(error).toContain("Kernel panic - not syncing: VFS");
    expect(error).not.toContain("\x1b[");
    expect(db.node("n-0")!.state).toBe("failed");
    expect(db.node("n-0")!.error).toBe(error);
  });

  test("the machine stops: failed at once, with its console", async () => {
    const { db, ctx } = setup();
    appendFileSync(consoleFile, "reboot: Power down\n");
    power = "off";
    const r = await waitForSignal(ctx, "n-0");
    expect((r as { error: string }).error).toStartWith("its machine stopped before it signalled; last console lines:\n");
    expect((r as { error: string }).error).toContain("reboot: Power down");
    expect(db.node("n-0")!.state).toBe("failed");
  });

  test("a FAILURE signal ends the wait with the metadata service's account of it", async () => {
    const { db, ctx } = setup();
    const waiting = waitForSignal(ctx, "n-0");
    db.transition("n-0", "failed", { fields: { error: "configure.d/50-x failed (exit 3):\nboom" } });
    expect(await waiting).toEqual({ ok: false, error: "configure.d/50-x failed (exit 3):\nboom" });
  });

  test("console tails: the last lines, escapes stripped, only after the offset", () => {
    setup();
    expect(consoleTail(consoleFile, 1)).toBe('OOO-READY {"old":true}');
    expect(consoleTail(consoleFile, 5, 39)).toBe("(the console is empty)");
    expect(consoleTail(consoleFile, 5, 4000)).toBe("(the console is empty)");
    expect(consoleTail(join(consoleFile, "nope"))).toBe("(no console log)");
  });

  test("a run killed after the machine came on but before it was recorded: the resumed wait counts from then, and the boot is in the timeline", async () => {
    const { db, ctx } = setup();
    // A second node whose last run was killed in powering-on, its machine already running (the fake is on).
    db.createNode({ name: "n-1", role: "n", idx: 1, pool: "p", driver: "fake", size: { memoryMiB: 512, cpus: 1 } });
    const killed = db.startRun("deploy");
    db.transition("n-1", "writing-image", { run: killed });
    db.transition("n-1", "powering-on", { run: killed, fields: { console_offset: ctx.db.node("n-0")!.console_offset } });
    const enteredAt = db.events({ node: "n-1" }).at(-1)!.at;
    await Bun.sleep(50);
    const resumed = { ...ctx, run: db.startRun("deploy") };
    resumePoweredOn(resumed, "n-1");
    const row = db.node("n-1")!;
    expect(row.state).toBe("booting");
    expect(row.powered_on_at).toBe(enteredAt);
    expect(row.waiting_since).toBe(enteredAt); // the deadline does not restart with every resume
    expect(db.events({ node: "n-1" }).find((e) => e.kind === "power-on")).toMatchObject({ at: enteredAt, run: killed, detail: { resumed: true } });

    const waiting = waitForSignal(resumed, "n-1");
    appendFileSync(consoleFile, READY);
    await Bun.sleep(400);
    db.transition("n-1", "active", { fields: { signalled_serial: 0 } });
    expect(await waiting).toEqual({ ok: true });
    const n1 = buildTimeline(db, resumed.run, "s").nodes.find((n) => n.node === "n-1")!;
    expect(n1.marks.map((m) => m.kind)).toEqual(expect.arrayContaining(["power-on", "booted"]));
    expect(n1.spans.map((s) => s.phase)).toContain("boot");
  });
});
