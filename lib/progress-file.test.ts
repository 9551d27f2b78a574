import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readProgress } from "../test/support/progress.ts";
import { log } from "./log.ts";
import { attachProgressFile } from "./progress-file.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("the progress stream (--progress-file)", () => {
  test("nested and side-by-side steps pair up; bytes count for a step and the steps around it; a failure is a fail event", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-progress-"));
    dirs.push(dir);
    const file = join(dir, "p.jsonl");
    const detach = attachProgressFile(file);
    await log.step("publish", async () => {
      await Promise.all(
        ["a", "b"].map((n) =>
          log.step(`upload ${n}`, async () => {
            await Bun.sleep(5);
            log.bytes(1000);
            log.progress(`${n}: half`, 500, 1000);
          }),
        ),
      );
      await log.step("attach index", () => log.info("sent"));
      await log.step("manifest", () => Promise.reject(new Error("store said no\nmore"))).catch(() => {});
    });
    detach();
    const events = readProgress(file);
    const end = (step: string) => events.find((e) => e.kind === "end" && e.step === step) as { bytes?: number; depth: number } | undefined;
    expect(end("upload a")).toMatchObject({ bytes: 1000, depth: 1 });
    expect(end("publish")).toMatchObject({ bytes: 2000, depth: 0 });
    expect(end("attach index")!.bytes).toBeUndefined();
    expect(events.find((e) => e.kind === "fail")).toMatchObject({ step: "manifest", error: "store said no", depth: 1 });
    expect(events.find((e) => e.kind === "progress")).toMatchObject({ text: "a: half", bytes: 500, total: 1000, step: "upload a", depth: 2 });
    expect(events.find((e) => e.kind === "info")).toMatchObject({ text: "sent", step: "attach index" });
  });

  test("a stream whose step never ends is refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-progress-"));
    dirs.push(dir);
    const file = join(dir, "p.jsonl");
    await Bun.write(file, `${JSON.stringify({ v: 1, kind: "start", step: "x", depth: 0, at: 0 })}\n`);
    expect(() => readProgress(file)).toThrow("never ended: x");
  });
});
