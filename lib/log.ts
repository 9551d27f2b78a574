import { AsyncLocalStorage } from "node:async_hooks";
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Every long step logs its start, its end or failure, and its elapsed time
 * through one helper (`await log.step("install.d/50-nginx", fn)`). The same
 * events feed the terminal, the log file and a JSON-lines stream, so what a
 * person reads and what a machine parses cannot disagree.
 */
export type LogEvent =
  | { kind: "start"; step: string; depth: number; at: number }
  | { kind: "end"; step: string; depth: number; at: number; seconds: number }
  | { kind: "fail"; step: string; depth: number; at: number; seconds: number; error: string }
  | { kind: "info" | "warn" | "error" | "output"; text: string; depth: number; at: number };

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

export class Log {
  private sinks: LogSink[] = [];
  private readonly depth = new AsyncLocalStorage<number>();
  readonly startedAt = Date.now();
  readonly timings: StepTiming[] = [];

  addSink(sink: LogSink): () => void {
    this.sinks.push(sink);
    return () => {
      this.sinks = this.sinks.filter((s) => s !== sink);
      sink.close?.();
    };
  }

  private emit(event: LogEvent) {
    for (const sink of this.sinks) sink.write(event);
  }

  private now() {
    return (Date.now() - this.startedAt) / 1000;
  }

  private get currentDepth() {
    return this.depth.getStore() ?? 0;
  }

  async step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
    const depth = this.currentDepth;
    const t0 = performance.now();
    this.emit({ kind: "start", step: name, depth, at: this.now() });
    try {
      const result = await this.depth.run(depth + 1, fn);
      const seconds = (performance.now() - t0) / 1000;
      this.timings.push({ step: name, depth, seconds, ok: true });
      this.emit({ kind: "end", step: name, depth, at: this.now(), seconds });
      return result;
    } catch (e) {
      const seconds = (performance.now() - t0) / 1000;
      this.timings.push({ step: name, depth, seconds, ok: false });
      const error = e instanceof Error ? e.message.split("\n")[0]! : String(e);
      this.emit({ kind: "fail", step: name, depth, at: this.now(), seconds, error });
      throw e;
    }
  }

  info(text: string) {
    this.emit({ kind: "info", text, depth: this.currentDepth, at: this.now() });
  }
  warn(text: string) {
    this.emit({ kind: "warn", text, depth: this.currentDepth, at: this.now() });
  }
  error(text: string) {
    this.emit({ kind: "error", text, depth: this.currentDepth, at: this.now() });
  }
  /** A line printed by a child process (a hook, mmdebstrap, apt). */
  output(text: string) {
    this.emit({ kind: "output", text, depth: this.currentDepth, at: this.now() });
  }
}

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
          line = `${indent}${paint("32", "✓")} ${e.step} ${paint("2", formatSeconds(e.seconds))}`;
          break;
        case "fail":
          line = `${indent}${paint("31", "✗")} ${e.step} ${paint("2", formatSeconds(e.seconds))}: ${e.error}`;
          break;
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
            ? `done  ${e.step} (${e.seconds.toFixed(3)}s)`
            : e.kind === "fail"
              ? `FAIL  ${e.step} (${e.seconds.toFixed(3)}s): ${e.error}`
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
