import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { table } from "../lib/log.ts";
import { ReadyReport } from "../wire/ready-report.ts";
import type { EventRow, RunRow, StateDb } from "./state.ts";

/**
 * The timeline of one deploy, per node, from the recorded events: image
 * fetch and write, power-on, boot (to the node's OOO-READY line), the first
 * metadata GET, the configuration run, the completion signal. Printed as a
 * table, written as JSON (for machines, and for the upgrade phases of
 * issue 7 to join) and as an HTML page with an SVG Gantt chart.
 */
export type Phase = "image fetch" | "ramdisk boot" | "image write" | "boot" | "metadata wait" | "configure" | "upgrade fetch" | "upgrade write";
export type MarkKind =
  | "power-on"
  | "fast track"
  | "lookup"
  | "kexec"
  | "booted"
  | "metadata published"
  | "metadata collected"
  | "signalled"
  | "failed"
  | "upgrade start"
  | "upgraded"
  | "rolled back";

export interface Span {
  phase: Phase;
  /** Seconds since the run started. */
  start: number;
  end: number;
  /** True when the phase had not ended when the run did. */
  open?: boolean;
  note?: string;
}

export interface Mark {
  kind: MarkKind;
  at: number;
  note?: string;
}

export interface NodeTimeline {
  node: string;
  spans: Span[];
  marks: Mark[];
  result: "active" | "failed" | "unchanged" | "removed" | "in progress";
  /** From the node's first step in this run to its successful signal: power-off (or change) to working. */
  seconds?: number;
}

export interface Timeline {
  version: 1;
  stack: string;
  run: number;
  command: string;
  startedAt: string;
  seconds: number;
  /** Killed runs this one resumed: the timeline starts with their steps. */
  resumes?: number[];
  nodes: NodeTimeline[];
}

export const PHASE_COLOURS: Record<Phase, string> = {
  "image fetch": "#9ecae1",
  "ramdisk boot": "#fdd0a2",
  "image write": "#3182bd",
  boot: "#fd8d3c",
  "metadata wait": "#bcbddc",
  configure: "#31a354",
  "upgrade fetch": "#c6dbef",
  "upgrade write": "#6baed6",
};

export const MARK_COLOURS: Record<MarkKind, string> = {
  "power-on": "#333",
  "fast track": "#636363",
  lookup: "#a63603",
  kexec: "#fd8d3c",
  booted: "#e6550d",
  "metadata published": "#756bb1",
  "metadata collected": "#54278f",
  signalled: "#006d2c",
  failed: "#c00",
  "upgrade start": "#08519c",
  upgraded: "#006d2c",
  "rolled back": "#a50f15",
};

const r1 = (n: number) => Math.round(n * 10) / 10;

/** A booted mark's note, from its ready report: "uptime 24.4s (kernel 3.1, initramfs 6.8, system 14.5)". */
function bootNote(d: Record<string, unknown>): string | undefined {
  if (typeof d.uptime !== "number") return undefined;
  const b = ReadyReport.shape.boot.safeParse(d.boot).data;
  return b ? `uptime ${d.uptime}s (kernel ${b.kernel}, initramfs ${b.initramfs}, system ${b.system})` : `uptime ${d.uptime}s`;
}

/** One node's spans and marks from its events (sorted by time), relative to `t0` (ms). */
export function nodeTimeline(node: string, events: EventRow[], t0: number, t1: number): NodeTimeline {
  const s = (at: number) => r1((at - t0) / 1000);
  const spans: Span[] = [];
  const marks: Mark[] = [];
  const open = new Map<Phase, { start: number; note?: string }>();
  const begin = (phase: Phase, at: number, note?: string) => open.set(phase, { start: at, note });
  const end = (phase: Phase, at: number, note?: string) => {
    const o = open.get(phase);
    if (!o) return;
    open.delete(phase);
    spans.push({ phase, start: s(o.start), end: s(at), ...((note ?? o.note) ? { note: note ?? o.note } : {}) });
  };
  let result: NodeTimeline["result"] = "unchanged";
  let upgrading = false;
  let first: number | undefined;
  let working: number | undefined;
  for (const e of events) {
    const d = e.detail ?? {};
    if (first === undefined && ["image-fetch-start", "power-on", "metadata-published", "image-write-start", "deploy-command"].includes(e.kind)) first = e.at;
    switch (e.kind) {
      // Bare metal: the firmware boots the deploy ramdisk (or it waited in standby), which writes the disk and kexecs.
      case "fast-track":
        marks.push({ kind: "fast track", at: s(e.at), note: `machine ${d.machine} waited in the ramdisk` });
        result = "in progress";
        break;
      case "ramdisk-lookup":
        marks.push({ kind: "lookup", at: s(e.at), note: `machine ${d.machine}` });
        end("ramdisk boot", e.at);
        break;
      case "ramdisk":
        if (d.phase === "writing" && !open.has("image write")) begin("image write", e.at, "by the deploy ramdisk");
        if (d.phase === "restarting") end("image write", e.at);
        break;
      case "ramdisk-result":
        if (d.action === "deploy" && d.status === "success") {
          end("image write", e.at);
          marks.push({ kind: "kexec", at: s(e.at), note: d.restart === "kexec" ? "no second firmware boot" : "kexec not possible: boot from disk" });
          begin("boot", e.at, d.restart === "kexec" ? "after kexec" : "from disk");
        }
        break;
      case "image-fetch-start":
        begin("image fetch", e.at, d.cached ? "in the cache" : "downloaded");
        break;
      case "image-fetch-end":
        end("image fetch", e.at);
        break;
      case "image-write-start":
        begin("image write", e.at);
        break;
      case "image-written":
        end("image write", e.at);
        break;
      case "power-on":
        marks.push({ kind: "power-on", at: s(e.at) });
        // A bare-metal machine powers on into the deploy ramdisk; its node boots later (kexec).
        begin(d.boot === "network" ? "ramdisk boot" : "boot", e.at);
        result = "in progress";
        break;
      case "booted":
        marks.push({ kind: "booted", at: s(e.at), note: bootNote(d) });
        end("boot", e.at);
        // After an upgrade's reboot the agents configure the new root straight away.
        if (upgrading) begin("configure", e.at, "new root");
        break;
      case "upgrade-start":
        upgrading = true;
        first ??= e.at;
        marks.push({ kind: "upgrade start", at: s(e.at), note: `to ${String(d.to ?? "").slice(7, 19)}` });
        begin("upgrade fetch", e.at);
        result = "in progress";
        break;
      case "progress":
        if (!upgrading) break;
        if (d.phase === "writing") {
          end("upgrade fetch", e.at);
          begin("upgrade write", e.at);
        } else if (d.phase === "rebooting" || d.phase === "switching") {
          end("upgrade fetch", e.at);
          end("upgrade write", e.at);
          if (!open.has("boot")) begin("boot", e.at, "reboot into the new root");
        }
        break;
      case "upgrade-done":
        upgrading = false;
        marks.push({ kind: "upgraded", at: s(e.at) });
        for (const phase of [...open.keys()]) end(phase, e.at);
        result = "active";
        working = e.at;
        break;
      case "upgrade-rolled-back":
      case "upgrade-failed":
        upgrading = false;
        marks.push({ kind: e.kind === "upgrade-failed" ? "failed" : "rolled back", at: s(e.at), note: String(d.reason ?? "").split("\n")[0] || undefined });
        for (const phase of [...open.keys()]) end(phase, e.at, e.kind === "upgrade-failed" ? "failed" : "rolled back");
        result = "failed";
        working = undefined;
        break;
      case "metadata-published":
        marks.push({ kind: "metadata published", at: s(e.at), note: `serial ${d.serial}` });
        begin("metadata wait", e.at);
        result = "in progress";
        break;
      case "metadata-collected":
        marks.push({ kind: "metadata collected", at: s(e.at), note: `serial ${d.serial}` });
        end("metadata wait", e.at);
        begin("configure", e.at, `serial ${d.serial}`);
        break;
      case "signalled":
        marks.push({ kind: "signalled", at: s(e.at), note: `${d.status}${d.failed_script ? ` (${d.failed_script})` : ""}` });
        end("configure", e.at);
        if (d.status === "SUCCESS") {
          result = "active";
          working = e.at;
        }
        break;
      case "transition":
        if (e.to_state === "failed") {
          marks.push({ kind: "failed", at: s(e.at), note: String(d.why ?? d.reason ?? "") || undefined });
          result = "failed";
          working = undefined;
          for (const phase of [...open.keys()]) end(phase, e.at, "failed");
        } else if (e.to_state === "active" && result !== "active") {
          result = "active";
          working ??= e.at;
        }
        break;
      case "deleted":
        result = "removed";
        break;
    }
  }
  for (const [phase, o] of open) spans.push({ phase, start: s(o.start), end: s(t1), open: true, ...(o.note ? { note: o.note } : {}) });
  spans.sort((a, b) => a.start - b.start);
  return { node, spans, marks, result, ...(first !== undefined && working !== undefined ? { seconds: r1((working - first) / 1000) } : {}) };
}

/**
 * The runs this one takes over: the unfinished ones (killed) right before it.
 * Their steps belong to this run's timeline, which then starts with theirs.
 */
function interruptedBefore(db: StateDb, run: number): RunRow[] {
  const out: RunRow[] = [];
  for (let id = run - 1; id > 0; id--) {
    const r = db.run(id);
    if (!r || r.ended_at !== null) break;
    out.unshift(r);
  }
  return out;
}

export function buildTimeline(db: StateDb, run: number, stack: string): Timeline {
  const r = db.run(run)!;
  const resumes = interruptedBefore(db, run);
  const t0 = resumes[0]?.started_at ?? r.started_at;
  const t1 = r.ended_at ?? Date.now();
  // Every node's events in one pass (a filter per node was quadratic: 20 s at 8,000 nodes).
  const byNode = new Map<string, EventRow[]>(db.nodeNames().map((n) => [n, []]));
  for (const e of db.events({ since: t0, until: t1 })) {
    const list = byNode.get(e.node);
    if (list) list.push(e);
    else byNode.set(e.node, [e]);
  }
  return {
    version: 1,
    stack,
    run,
    command: r.command,
    startedAt: new Date(t0).toISOString(),
    seconds: r1((t1 - t0) / 1000),
    ...(resumes.length ? { resumes: resumes.map((x) => x.id) } : {}),
    nodes: [...byNode].map(([n, events]) => nodeTimeline(n, events, t0, t1)),
  };
}

// --- as text ---

export function timelineTable(t: Timeline): string {
  const at = (n: NodeTimeline, kind: MarkKind) => {
    const m = n.marks.filter((x) => x.kind === kind).at(-1);
    return m ? m.at.toFixed(1) : "-";
  };
  const span = (n: NodeTimeline, phase: Phase) => {
    const x = n.spans.find((s) => s.phase === phase);
    return x ? `${(x.end - x.start).toFixed(1)}${x.open ? "+" : ""}` : "-";
  };
  if (t.command === "upgrade" || t.command === "takeover")
    return table(
      ["node", "result", "upgrade @", "fetch s", "write s", "reboot s", "configure s", "done @", "upgrade→working s"],
      t.nodes.map((n) => [
        n.node,
        n.result,
        at(n, "upgrade start"),
        span(n, "upgrade fetch"),
        span(n, "upgrade write"),
        span(n, "boot"),
        span(n, "configure"),
        n.marks.some((m) => m.kind === "upgraded") ? at(n, "upgraded") : at(n, "rolled back"),
        n.seconds === undefined ? "-" : n.seconds.toFixed(1),
      ]),
    );
  return table(
    ["node", "result", "fetch s", "write s", "power-on @", "ready @", "collected @", "signalled @", "power-off→working s"],
    t.nodes.map((n) => [
      n.node,
      n.result,
      span(n, "image fetch"),
      span(n, "image write"),
      at(n, "power-on"),
      at(n, "booted"),
      at(n, "metadata collected"),
      at(n, "signalled"),
      n.seconds === undefined ? "-" : n.seconds.toFixed(1),
    ]),
  );
}

// --- as a Gantt chart ---

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function timelineSvg(t: Timeline): string {
  const rowH = 30;
  const left = 150;
  const width = 900;
  const top = 40;
  const seconds = Math.max(t.seconds, ...t.nodes.flatMap((n) => [...n.spans.map((s) => s.end), ...n.marks.map((m) => m.at)]), 1);
  const x = (sec: number) => left + (sec / seconds) * width;
  const height = top + t.nodes.length * rowH + 75;
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((s) => seconds / s <= 12) ?? 1200;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 40}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<text x="${left}" y="16" font-size="14" font-weight="bold">${esc(`${t.stack}: ooo ${t.command}, run ${t.run}${t.resumes ? ` (resuming ${t.resumes.join(", ")})` : ""} — ${t.startedAt}, ${t.seconds.toFixed(1)}s`)}</text>`,
  ];
  for (let s = 0; s <= seconds; s += step) {
    parts.push(`<line x1="${x(s)}" y1="${top - 8}" x2="${x(s)}" y2="${top + t.nodes.length * rowH}" stroke="#ddd"/>`);
    parts.push(`<text x="${x(s)}" y="${top - 12}" text-anchor="middle" fill="#666">${s}s</text>`);
  }
  t.nodes.forEach((n, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="${left - 8}" y="${y + 19}" text-anchor="end">${esc(n.node)}</text>`);
    parts.push(`<text x="${left - 8}" y="${y + 29}" text-anchor="end" font-size="9" fill="${n.result === "failed" ? "#c00" : "#666"}">${esc(n.result)}${n.seconds !== undefined ? ` ${n.seconds}s` : ""}</text>`);
    n.spans.forEach((s, j) => {
      const lane = s.phase === "configure" || s.phase === "metadata wait" ? 1 : 0;
      const h = 10;
      const yy = y + 5 + lane * (h + 2);
      parts.push(
        `<rect x="${x(s.start)}" y="${yy}" width="${Math.max(x(s.end) - x(s.start), 1.5)}" height="${h}" fill="${PHASE_COLOURS[s.phase]}"${s.open ? ' fill-opacity="0.5" stroke="#c00" stroke-dasharray="3,2"' : ""}><title>${esc(`${n.node} ${s.phase}: ${s.start}s → ${s.end}s (${r1(s.end - s.start)}s)${s.note ? `, ${s.note}` : ""}`)}</title></rect>`,
      );
      void j;
    });
    for (const m of n.marks) {
      const colour = m.kind === "signalled" && m.note?.startsWith("FAILURE") ? "#c00" : MARK_COLOURS[m.kind];
      parts.push(
        `<path d="M${x(m.at)},${y + 3} l4,8 l-4,8 l-4,-8 z" fill="${colour}" stroke="#fff" stroke-width="0.5"><title>${esc(`${n.node} ${m.kind} at ${m.at}s${m.note ? ` (${m.note})` : ""}`)}</title></path>`,
      );
    }
  });
  const legendY = top + t.nodes.length * rowH + 25;
  let lx = left;
  for (const [phase, colour] of Object.entries(PHASE_COLOURS)) {
    parts.push(`<rect x="${lx}" y="${legendY - 10}" width="14" height="10" fill="${colour}"/><text x="${lx + 18}" y="${legendY}">${phase}</text>`);
    lx += 30 + phase.length * 7;
  }
  lx = left;
  for (const [kind, colour] of Object.entries(MARK_COLOURS)) {
    parts.push(`<path d="M${lx + 4},${legendY + 9} l4,7 l-4,7 l-4,-7 z" fill="${colour}"/><text x="${lx + 14}" y="${legendY + 20}">${kind}</text>`);
    lx += 30 + kind.length * 7;
  }
  parts.push("</svg>");
  return parts.join("\n");
}

export function timelineHtml(t: Timeline): string {
  const rows = t.nodes
    .map(
      (n) =>
        `<tr><td>${esc(n.node)}</td><td>${esc(n.result)}</td><td>${n.seconds ?? "-"}</td><td>${n.spans
          .map((s) => `${esc(s.phase)} ${s.start}–${s.end}s${s.open ? " (unfinished)" : ""}`)
          .join("<br>")}</td><td>${n.marks.map((m) => `${esc(m.kind)} @${m.at}s${m.note ? ` <small>${esc(m.note)}</small>` : ""}`).join("<br>")}</td></tr>`,
    )
    .join("\n");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(t.stack)} — ooo ${esc(t.command)} run ${t.run}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}</style>
</head><body>
<h1>${esc(t.stack)}: ooo ${esc(t.command)}, run ${t.run}</h1>
<p>Started ${esc(t.startedAt)}, ${t.seconds}s. Times are seconds since the command started; hover a bar or a mark for details.</p>
${timelineSvg(t)}
<table><tr><th>node</th><th>result</th><th>power-off→working s</th><th>phases</th><th>marks</th></tr>
${rows}
</table>
</body></html>
`;
}

/** Write run-N.json and run-N.html (and latest.*) into `dir`. */
export async function writeTimeline(t: Timeline, dir: string): Promise<{ json: string; html: string }> {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `run-${t.run}.json`);
  const html = join(dir, `run-${t.run}.html`);
  writeFileSync(json, JSON.stringify(t, null, 2) + "\n");
  writeFileSync(html, timelineHtml(t));
  copyFileSync(json, join(dir, "latest.json"));
  copyFileSync(html, join(dir, "latest.html"));
  return { json, html };
}
