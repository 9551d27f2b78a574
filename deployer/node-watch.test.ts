import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConsoleWatch, consoleSize, POWER_CHECKS, ROUND_MS, watchNode } from "./node-watch.ts";
import { StateDb } from "./state.ts";

const READY = (slot: string) =>
  `OOO-READY {"slot":"${slot}","trial":0,"rootReadOnly":true,"state":{"kind":"partition","device":"/dev/vda5","mounted":true,"writable":true},"statePaths":[],"failedUnits":[],"uptime":1}\n`;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function consoleFile(text: string) {
  const dir = mkdtempSync(join(tmpdir(), "ooo-node-watch-"));
  dirs.push(dir);
  const file = join(dir, "console.log");
  writeFileSync(file, text);
  return file;
}

describe("the node watcher (deploy's wait and upgrade's watch)", () => {
  test("a console watch sees only lines printed after it started, and a line only once it is whole", () => {
    const file = consoleFile(`old boot\n${READY("A")}`);
    const watch = new ConsoleWatch(file, consoleSize(file));
    expect(watch.ready()).toBeUndefined();
    const line = READY("B");
    appendFileSync(file, `kexec\r\n${line.slice(0, 30)}`);
    expect(watch.ready()).toBeUndefined();
    appendFileSync(file, line.slice(30));
    expect(watch.ready()?.slot).toBe("B");
    expect(watch.ready()).toBeUndefined();
  });

  test("ticks until a result; at the deadline, expired gives one more chance (upgrade's reset) or the result", async () => {
    const db = stateWith(["n-0"]);
    const file = consoleFile("");
    const calls: string[] = [];
    let resets = 0;
    const t0 = Date.now();
    const result = await watchNode<string>(db, {
      node: "n-0",
      console: { file, from: 0 },
      deadline: t0 + 300,
      tick: ({ console, row }) => {
        calls.push(row?.name ?? "gone");
        return console.ready() ? `booted after ${resets} reset` : undefined;
      },
      expired: (now) => {
        resets++;
        if (resets === 1) {
          setTimeout(() => appendFileSync(file, READY("A")), 300);
          return { until: now + 5000 };
        }
        return { result: "gave up" };
      },
    });
    expect(result).toBe("booted after 1 reset");
    expect(calls.length).toBeGreaterThan(2);
    expect(new Set(calls)).toEqual(new Set(["n-0"]));
  });

  test("expired's result ends the watch", async () => {
    const db = stateWith(["n-0"]);
    const r = await watchNode<string>(db, { node: "n-0", console: { file: undefined, from: 0 }, deadline: Date.now(), tick: () => undefined, expired: () => ({ result: "timeout" }) });
    expect(r).toBe("timeout");
  });

  test("many watches share one query a round, see their own node's row, and ask the power rationed", async () => {
    const names = Array.from({ length: 400 }, (_, i) => `n-${i}`);
    const db = stateWith(names);
    let queries = 0;
    const read = db.changedNodes.bind(db);
    db.changedNodes = (since) => (queries++, read(since));
    const powerAsks: number[] = [];
    const t0 = Date.now();
    // Long enough that every node is due three times (every 2 s): unrationed, that would be 1200 asks.
    const rounds = 18;
    const seen = await Promise.all(
      names.map((name) =>
        watchNode<string>(db, {
          node: name,
          console: { file: undefined, from: 0 },
          deadline: t0 + rounds * ROUND_MS,
          tick: ({ row, checkPower }) => {
            if (checkPower) powerAsks.push(Date.now());
            return row?.name === name ? undefined : `${name} saw ${row?.name}`;
          },
          expired: () => ({ result: "ok" }),
        }),
      ),
    );
    expect(seen.filter((s) => s !== "ok")).toEqual([]);
    // One query a round for all of them.
    expect(queries).toBeLessThanOrEqual(rounds + 2);
    const seconds = (Date.now() - t0) / 1000;
    expect(powerAsks.length).toBeGreaterThan(0);
    expect(powerAsks.length).toBeLessThanOrEqual(Math.ceil(POWER_CHECKS.perSecond * seconds) + 1);
  });
});

test("a quiet watch ticks when its node changes (written through another connection), its power turn, or its deadline — not every round", async () => {
  const db = stateWith(["n-0", "n-1"]);
  const other = StateDb.open(db.dir);
  const ticks: string[] = [];
  const t0 = Date.now();
  const done = watchNode<string>(db, {
    node: "n-0",
    console: { file: undefined, from: 0 },
    deadline: t0 + 10_000,
    quiet: true,
    tick: ({ row, checkPower }) => {
      ticks.push(checkPower ? "power" : `${row?.state}`);
      return row?.state === "failed" ? "saw it" : undefined;
    },
    expired: () => ({ result: "timeout" }),
  });
  await Bun.sleep(5 * ROUND_MS);
  other.update("n-1", { error: "another node's change" });
  await Bun.sleep(3 * ROUND_MS);
  const before = ticks.length;
  other.transition("n-0", "failed");
  expect(await done).toBe("saw it");
  other.close();
  // The first tick, a power turn at once (never asked yet); nothing for n-1's change; then the change.
  expect(ticks.slice(0, before)).toEqual(["new", "power"]);
  expect(ticks.at(-1)).toBe("failed");
});

function stateWith(names: string[]): StateDb {
  const dir = mkdtempSync(join(tmpdir(), "ooo-node-watch-db-"));
  dirs.push(dir);
  const db = StateDb.open(dir);
  for (const [i, name] of names.entries()) db.createNode({ name, role: "n", idx: i, pool: "p", driver: "qemu", size: { memoryMiB: 512, cpus: 1 } });
  return db;
}
