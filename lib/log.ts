import { AsyncLocalStorage } from "node:async_hooks";
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { STEP_EVENT_VERSION, type StepEvent } from "../wire/step-event.ts";

/**
 * Every long step logs its start, its end or failure, and its elapsed time
 * through one helper (`await log.step("install.d/50-nginx", fn)`). The same
 * events feed the terminal, the log file and a JSON-lines stream, so what a
 * person reads and what a machine parses cannot disagree.
 */
export type LogEvent = StepEvent;

export interface LogSink {
  write(event: LogEvent): void;
  close?(): void;
}

export interface StepTiming {
  step: string;
  depth: number;
  seconds: number;
  ok: boolean;
}

/** The step a piece of work runs in; bytes it moves count for it and every step around it. */
interface Frame {
  step: string;
  depth: number;
  bytes: number;
  parent?: Frame;
}

export class Log {
  private sinks: LogSink[] = [];
  private readonly frame = new AsyncLocalStorage<Frame>();
  readonly startedAt = Date.now();
  readonly timings: StepTiming[] = [];

  addSink(sink: LogSink): () => void {
    this.sinks.push(sink);
    return () => {
      this.sinks = this.sinks.filter((s) => s !== sink);
      sink.close?.();
    };
  }

  private emit(event: DistributiveOmit<LogEvent, "v" | "at" | "depth">, depth = this.currentDepth) {
    const full = { v: STEP_EVENT_VERSION, ...event, depth, at: this.now() } as LogEvent;
    for (const sink of this.sinks) sink.write(full);
  }

  private now() {
    return (Date.now() - this.startedAt) / 1000;
  }

  private get currentDepth() {
    const f = this.frame.getStore();
    return f ? f.depth + 1 : 0;
  }

  private get within() {
    return this.frame.getStore()?.step;
  }

  async step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const depth = this.currentDepth;
    const frame: Frame = { step: name, depth, bytes: 0, parent: this.frame.getStore() };
    const t0 = performance.now();
    const moved = () => (frame.bytes > 0 ? { bytes: frame.bytes } : {});
    this.emit({ kind: "start", step: name }, depth);
    try {
      const result = await this.frame.run(frame, fn);
      const seconds = (performance.now() - t0) / 1000;
      this.timings.push({ step: name, depth, seconds, ok: true });
      this.emit({ kind: "end", step: name, seconds, ...moved() }, depth);
      return result;
    } catch (e) {
      const seconds = (performance.now() - t0) / 1000;
      this.timings.push({ step: name, depth, seconds, ok: false });
      const error = e instanceof Error ? e.message.split("\n")[0]! : String(e);
      this.emit({ kind: "fail", step: name, seconds, error, ...moved() }, depth);
      throw e;
    }
  }

  /** Count bytes the current step moved (and so every step around it); its end event reports them. */
  bytes(n: number) {
    for (let f = this.frame.getStore(); f; f = f.parent) f.bytes += n;
  }

  info(text: string) {
    this.emit({ kind: "info", text, step: this.within });
  }
  warn(text: string) {
    this.emit({ kind: "warn", text, step: this.within });
  }
  error(text: string) {
    this.emit({ kind: "error", text, step: this.within });
  }
  /** A line printed by a child process (a hook, mmdebstrap, apt). */
  output(text: string) {
    this.emit({ kind: "output", text, step: this.within });
  }
  /** How far long work has got, in bytes (a node fetching its new root). */
  progress(text: string, bytes: number, total?: number) {
    this.emit({ kind: "progress", text, bytes, ...(total === undefined ? {} : { total }), step: this.within });
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The process-wide log; the CLI attaches sinks, libraries only emit. */
export const log = new Log();

const useColour = () => process.stderr.isTTY && !process.env.NO_COLOR;

function paint(code: string, text: string) {
  return useColour() ? `\x1b[${code}m${text}\x1b[0m` : text;
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${(s - m * 60).toFixed(0).padStart(2, "0")}s`;
}

const formatBytes = (n?: number) => (n ? `, ${(n / 2 ** 20).toFixed(1)} MiB` : "");

/** Human-readable progress on stderr: elapsed time, nesting, outcome. */
export function terminalSink(options: { showOutput: boolean } = { showOutput: true }): LogSink {
  return {
    write(e) {
      const clock = paint("2", `[${formatSeconds(e.at).padStart(6)}]`);
      const indent = "  ".repeat(e.depth);
      let line: string | undefined;
      switch (e.kind) {
        case "start":
          line = `${indent}${paint("36", "▶")} ${e.step}`;
          break;
        case "end":
          line = `${indent}${paint("32", "✓")} ${e.step} ${paint("2", formatSeconds(e.seconds) + formatBytes(e.bytes))}`;
          break;
        case "fail":
          line = `${indent}${paint("31", "✗")} ${e.step} ${paint("2", formatSeconds(e.seconds) + formatBytes(e.bytes))}: ${e.error}`;
          break;
        case "progress":
        case "info":
          line = `${indent}${e.text}`;
          break;
        case "warn":
          line = `${indent}${paint("33", "warning:")} ${e.text}`;
          break;
        case "error":
          line = `${indent}${paint("31", "error:")} ${e.text}`;
          break;
        case "output":
          if (options.showOutput) line = `${indent}${paint("2", "│ " + e.text)}`;
          break;
      }
      if (line !== undefined) process.stderr.write(`${clock} ${line}\n`);
    },
  };
}

/** The full log beside the output, timestamped like DIB's (`YYYY-MM-DD HH:MM:SS.mmm | `). */
export function fileSink(path: string): LogSink {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "a");
  const stamp = () => new Date().toISOString().replace("T", " ").replace("Z", "");
  return {
    write(e) {
      const indent = "  ".repeat(e.depth);
      const text =
        e.kind === "start"
          ? `start ${e.step}`
          : e.kind === "end"
            ? `done  ${e.step} (${e.seconds.toFixed(3)}s${e.bytes ? `, ${e.bytes} bytes` : ""})`
            : e.kind === "fail"
              ? `FAIL  ${e.step} (${e.seconds.toFixed(3)}s${e.bytes ? `, ${e.bytes} bytes` : ""}): ${e.error}`
              : e.kind === "output"
                ? `| ${e.text}`
                : `${e.kind}: ${e.text}`;
      writeSync(fd, `${stamp()} | ${indent}${text}\n`);
    },
    close() {
      closeSync(fd);
    },
  };
}

/** One JSON object per event, for machines following a long run. */
export function jsonLinesSink(write: (line: string) => void): LogSink {
  return { write: (e) => write(JSON.stringify(e) + "\n") };
}

/** A plain table for summaries: columns padded, numbers right-aligned. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[], isNum: boolean[]) =>
    r.map((c, i) => (isNum[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number"));
  return [
    fmt(headers, numeric),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map((r) => fmt(r.map(String), numeric)),
  ].join("\n");
}
