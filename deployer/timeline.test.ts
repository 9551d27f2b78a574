import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StateDb } from "./state.ts";
import { buildTimeline, nodeTimeline, timelineHtml, timelineSvg, timelineTable, writeTimeline } from "./timeline.ts";
import { ev, T0 } from "../test/support/node-events.ts";


/** A first deploy: fetch, write, power on, metadata, signal, and the ready line after it. */
const DEPLOY = [
  ev(0.2, "image-fetch-start", { cached: false }),
  ev(3.2, "image-fetch-end"),
  ev(3.2, "image-write-start"),
  ev(3.6, "image-written"),
  ev(3.7, "power-on"),
  ev(3.7, "transition", {}, "booting"),
  ev(40.1, "metadata-collected", { serial: 1 }),
  ev(44.0, "signalled", { serial: 1, status: "SUCCESS" }),
  ev(44.0, "transition", { serial: 1 }, "active"),
  ev(47.5, "booted", { uptime: 41.2 }),
];

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("deploy timeline", () => {
  test("phases and marks of a first deploy; power-off to working ends at the signal", () => {
    const n = nodeTimeline("web-0", DEPLOY, T0, T0 + 48_000);
    expect(n.result).toBe("active");
    expect(n.spans).toEqual([
      { phase: "image fetch", start: 0.2, end: 3.2, note: "downloaded" },
      { phase: "image write", start: 3.2, end: 3.6 },
      { phase: "boot", start: 3.7, end: 47.5 },
      { phase: "configure", start: 40.1, end: 44, note: "serial 1" },
    ]);
    expect(n.marks.map((m) => `${m.kind}@${m.at}`)).toEqual(["power-on@3.7", "metadata collected@40.1", "signalled@44", "booted@47.5"]);
    expect(n.seconds).toBe(43.8);
  });

  test("the booted mark says where the boot went, when the node's report tells it", () => {
    const boot = { kernel: 3.05, initramfs: 6.75, system: 14.59 };
    const note = (detail: Record<string, unknown>) => nodeTimeline("web-0", [...DEPLOY.slice(0, -1), ev(47.5, "booted", detail)], T0, T0 + 48_000).marks.at(-1)!.note;
    expect(note({ uptime: 24.39, boot })).toBe("uptime 24.39s (kernel 3.05, initramfs 6.75, system 14.59)");
    expect(note({ uptime: 24.39 })).toBe("uptime 24.39s"); // an image from before the report had it
    expect(note({ uptime: 24.39, boot: { kernel: "?" } })).toBe("uptime 24.39s");
  });

  test("a metadata change: published, collected at the next poll, configured; no boot", () => {
    const n = nodeTimeline(
      "web-0",
      [ev(0.1, "transition", {}, "configuring"), ev(0.1, "metadata-published", { serial: 2 }), ev(2.9, "metadata-collected", { serial: 2 }), ev(4.0, "signalled", { serial: 2, status: "SUCCESS" })],
      T0,
      T0 + 5000,
    );
    expect(n.spans.map((s) => s.phase)).toEqual(["metadata wait", "configure"]);
    expect(n.marks.map((m) => m.kind)).not.toContain("power-on");
    expect(n.seconds).toBe(3.9);
  });

  test("a node that fails: open phases close at the failure, no power-off-to-working figure", () => {
    const n = nodeTimeline(
      "web-0",
      [...DEPLOY.slice(0, 6), ev(100, "transition", { why: "timeout" }, "failed")],
      T0,
      T0 + 101_000,
    );
    expect(n.result).toBe("failed");
    expect(n.spans.find((s) => s.phase === "boot")).toEqual({ phase: "boot", start: 3.7, end: 100, note: "failed" });
    expect(n.marks.at(-1)).toEqual({ kind: "failed", at: 100, note: "timeout" });
    expect(n.seconds).toBeUndefined();
  });

  test("a phase still running when the run ended is marked open", () => {
    const n = nodeTimeline("web-0", DEPLOY.slice(0, 6), T0, T0 + 10_000);
    expect(n.spans.at(-1)).toEqual({ phase: "boot", start: 3.7, end: 10, open: true });
    expect(n.result).toBe("in progress");
  });

  test("rendered: table, SVG Gantt chart, HTML page, JSON; a killed run's steps join the run that resumed it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ooo-timeline-test-"));
    dirs.push(dir);
    const db = StateDb.open(dir);
    const killed = db.startRun("deploy");
    db.createNode({ name: "web-0", role: "web", idx: 0, pool: "local", driver: "qemu", size: { memoryMiB: 512, cpus: 1 } }, killed);
    db.event("web-0", "image-write-start", {}, { run: killed });
    db.event("web-0", "image-written", {}, { run: killed });
    db.event("web-0", "power-on", {}, { run: killed });
    const run = db.startRun("deploy");
    db.event("web-0", "metadata-collected", { serial: 1 });
    db.event("web-0", "signalled", { serial: 1, status: "SUCCESS" });
    db.endRun(run, "ok");
    const t = buildTimeline(db, run, "demo<&>");
    expect(t.resumes).toEqual([killed]);
    expect(t.nodes[0]!.spans.map((s) => s.phase).sort()).toEqual(["boot", "configure", "image write"]);
    expect(t.nodes[0]!.result).toBe("active");

    const text = timelineTable(t);
    expect(text.split("\n")[0]).toMatch(/^node\s+result\s+fetch s\s+write s\s+power-on @\s+ready @\s+collected @\s+signalled @\s+power-off→working s$/);
    expect(text).toMatch(/web-0\s+active/);
    const svg = timelineSvg(t);
    expect(svg).toStartWith("<svg");
    expect(svg).toContain("demo&#60;&#38;&#62;"); // names are escaped
    expect(svg.match(/<rect [^>]*fill="#3182bd"/g)).toHaveLength(2); // the image-write bar and its legend swatch
    expect(svg).toContain("<title>web-0 configure:");
    const html = timelineHtml(t);
    expect(html).toContain("<!doctype html>");
    expect(html).toContain(svg);
    const files = await writeTimeline(t, join(dir, "timelines"));
    expect(JSON.parse(readFileSync(files.json, "utf8"))).toEqual(JSON.parse(JSON.stringify(t)));
    expect(readFileSync(join(dir, "timelines", "latest.html"), "utf8")).toBe(html);
    db.close();
  });
});
