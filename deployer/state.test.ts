import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { historyStart, pruneHistory } from "./history.ts";
import { BadTransition, StateDb, TRANSITIONS, type NodeState } from "./state.ts";

const dirs: string[] = [];
function fresh() {
  const dir = mkdtempSync(join(tmpdir(), "ooo-state-test-"));
  dirs.push(dir);
  return { dir, db: StateDb.open(dir) };
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const NODE = { name: "web-0", role: "web", idx: 0, pool: "local", driver: "qemu", size: { memoryMiB: 1024, cpus: 1 } };

describe("deployer state", () => {
  test("a node's life: every transition recorded with its time, in order", () => {
    const { db } = fresh();
    const run = db.startRun("deploy");
    db.createNode(NODE, run);
    const path: NodeState[] = ["writing-image", "powering-on", "booting", "configuring", "active", "configuring", "active", "deleting"];
    for (const to of path) db.transition("web-0", to, { run });
    const events = db.events({ node: "web-0" });
    expect(events.map((e) => `${e.from_state ?? ""}>${e.to_state}`)).toEqual([
      ">new",
      "new>writing-image",
      "writing-image>powering-on",
      "powering-on>booting",
      "booting>configuring",
      "configuring>active",
      "active>configuring",
      "configuring>active",
      "active>deleting",
    ]);
    expect(events.every((e, i) => e.at >= (events[i - 1]?.at ?? 0) && e.run === run)).toBe(true);
    db.deleteNode("web-0", run);
    expect(db.node("web-0")).toBeUndefined();
    expect(db.events({ node: "web-0" }).at(-1)!.kind).toBe("deleted");
  });

  test.each([
    ["new", "active"],
    ["new", "booting"],
    ["writing-image", "active"],
    ["active", "new"],
    ["deleting", "active"],
  ] as [NodeState, NodeState][])("refused: %s → %s", (from, to) => {
    expect(TRANSITIONS[from]).not.toContain(to);
    const { db } = fresh();
    db.createNode(NODE);
    db.db.query("UPDATE nodes SET state = ? WHERE name = 'web-0'").run(from);
    expect(() => db.transition("web-0", to)).toThrow(BadTransition);
    expect(db.node("web-0")!.state).toBe(from);
  });

  test("a node can fail before its disk is written (its machine's BMC refused, its disk too small)", () => {
    const { db } = fresh();
    db.createNode(NODE);
    db.transition("web-0", "failed", { fields: { error: "machine x1: BMC refused the login" } });
    expect(db.node("web-0")).toMatchObject({ state: "failed", error: "machine x1: BMC refused the login" });
  });

  test("a failed node can be retried every way, and a late success signal makes it active", () => {
    for (const to of ["writing-image", "powering-on", "configuring", "active", "deleting"] as NodeState[]) expect(TRANSITIONS.failed).toContain(to);
  });

  test("fields go with the transition, and survive closing (a killed deploy resumes from them)", () => {
    const { dir, db } = fresh();
    db.createNode(NODE);
    db.transition("web-0", "writing-image", { fields: { image_digest: "sha256:aa", serial: 1, waiting_since: 123 }, detail: { why: "new node" } });
    db.close();
    const again = StateDb.open(dir);
    const n = again.node("web-0")!;
    expect(n.state).toBe("writing-image");
    expect(n.image_digest).toBe("sha256:aa");
    expect(n.serial).toBe(1);
    expect(n.size).toEqual(NODE.size);
    expect(again.events({ node: "web-0" }).at(-1)!.detail).toEqual({ why: "new node" });
    again.close();
  });

  test("two processes at once (deploy and the metadata service): each sees the other's writes", () => {
    const { dir, db } = fresh();
    const other = StateDb.open(dir);
    db.createNode(NODE);
    other.recordSignal({ node: "web-0", serial: 1, status: "FAILURE", reason: "x failed", body: "{}" });
    other.recordSignal({ node: "web-0", serial: 1, status: "SUCCESS", reason: "configured", body: "{}" });
    expect(db.signal("web-0", 1)!.status).toBe("SUCCESS");
    expect(db.signal("web-0", 2)).toBeUndefined();
    other.close();
  });

  test("runs and stack facts", () => {
    const { db } = fresh();
    const id = db.startRun("deploy");
    expect(db.lastRun("deploy")!.id).toBe(id);
    db.endRun(id, "ok");
    expect(db.run(id)!.result).toBe("ok");
    db.setInfo("stack", "demo");
    db.setInfo("stack", "demo2");
    expect(db.info("stack")).toBe("demo2");
  });
});

describe("bounded history", () => {
  const DAY = 86_400_000;
  test("events older than the last runs and the last days go, but each node's upgrade-start; a node keeps only its latest serial's signals", async () => {
    const { db } = fresh();
    db.createNode(NODE);
    const now = Date.now();
    // Five finished runs, 30 days apart; each with an event; one upgrade-start long ago.
    const runs = [150, 120, 90, 60, 30].map((daysAgo) => {
      const id = db.startRun("deploy");
      db.db.query("UPDATE runs SET started_at = ?, ended_at = ? WHERE id = ?").run(now - daysAgo * DAY, now - daysAgo * DAY + 1000, id);
      db.event("web-0", "power-on", {}, { run: id, at: now - daysAgo * DAY + 10 });
      return id;
    });
    db.event("web-0", "upgrade-start", { to: "sha256:aaa" }, { at: now - 140 * DAY });
    db.event("web-0", "signalled", { serial: 9 }, { at: now - 2 * DAY }); // a node's report between commands
    const current = db.startRun("upgrade");
    expect(historyStart(db, now)).toBe(now - 60 * DAY); // the last three runs: this one and the two before it
    expect(await pruneHistory(db, { now })).toBe(3);
    const left = db.events({ node: "web-0" });
    expect(left.map((e) => `${e.kind}:${e.run ?? "-"}`)).toEqual(["upgrade-start:-", `power-on:${runs[3]}`, `power-on:${runs[4]}`, "signalled:-", "transition:-"]);
    expect(db.run(current)).toBeDefined();

    db.recordSignal({ node: "web-0", serial: 1, status: "FAILURE", reason: "x", body: "{}" });
    db.recordSignal({ node: "web-0", serial: 2, status: "SUCCESS", reason: "ok", body: "{}" });
    expect(db.signal("web-0", 1)).toBeUndefined();
    expect(db.signal("web-0", 2)!.status).toBe("SUCCESS");
  });

  test("when the newest runs were killed, all of them are kept (the next run's timeline takes them over)", () => {
    const { db } = fresh();
    const now = Date.now();
    const at = (daysAgo: number, ended: boolean) => {
      const id = db.startRun("deploy");
      db.db.query("UPDATE runs SET started_at = ?, ended_at = ? WHERE id = ?").run(now - daysAgo * DAY, ended ? now - daysAgo * DAY + 1 : null, id);
    };
    at(100, true);
    at(90, false);
    at(80, false);
    at(70, true);
    at(60, true);
    at(50, true);
    expect(historyStart(db, now)).toBe(now - 70 * DAY);
    at(40, false);
    at(30, false);
    at(20, false);
    // The three newest are killed runs: the next run's timeline takes them over, and the finished one before them is not kept.
    expect(historyStart(db, now)).toBe(now - 40 * DAY);
    at(15, false);
    at(12, false);
    // Five killed in a row at the head: all kept.
    expect(historyStart(db, now)).toBe(now - 40 * DAY);
    at(10, true);
    // A finished run resumed them (its timeline is written): the last three again.
    expect(historyStart(db, now)).toBe(now - 15 * DAY);
  });
});
