import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConsoleWatch, consoleSize, watchNode } from "./node-watch.ts";

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
    const file = consoleFile("");
    const calls: string[] = [];
    let resets = 0;
    const t0 = Date.now();
    const result = await watchNode<string>({
      console: { file, from: 0 },
      deadline: t0 + 100,
      intervalMs: 20,
      tick: ({ console }) => {
        calls.push("tick");
        return console.ready() ? `booted after ${resets} reset` : undefined;
      },
      expired: (now) => {
        resets++;
        if (resets === 1) {
          setTimeout(() => appendFileSync(file, READY("A")), 30);
          return { until: now + 1000 };
        }
        return { result: "gave up" };
      },
    });
    expect(result).toBe("booted after 1 reset");
    expect(calls.length).toBeGreaterThan(3);
  });

  test("expired's result ends the watch", async () => {
    const r = await watchNode<string>({ console: { file: undefined, from: 0 }, deadline: Date.now(), intervalMs: 10, tick: () => undefined, expired: () => ({ result: "timeout" }) });
    expect(r).toBe("timeout");
  });
});
