import { appendFileSync } from "node:fs";
import { log, type LogEvent, type LogSink } from "../lib/log.ts";

/**
 * The agents log through lib/log (steps with timings, like every part of
 * ooo), but print lines in the originals' formats, because operators grep
 * node logs for them:
 *
 *   os-apply-config    [2026/11/25 08:27:44 AM] [INFO] writing /etc/motd
 *   os-refresh-config  [2026-11-25 08:30:46,042] (os-refresh-config) [INFO] Starting phase configure
 *   os-collect-config  2026-11-25 08:27:44.123 4242 INFO os-collect-config [-] Sleeping 30.00 seconds.
 */
export type AgentName = "os-apply-config" | "os-refresh-config" | "os-collect-config";
/** Who writes a log line: one of the three agents, or ooo's own node commands (takeover, mark-good, …). */
export type LogSource = AgentName | "ooo-agent";
export type Level = "DEBUG" | "INFO" | "WARNING" | "ERROR";

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

export function formatLine(agent: LogSource, level: Level, text: string, now = new Date()): string {
  const date = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  const time = `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
  const ms = pad(now.getMilliseconds(), 3);
  switch (agent) {
    case "os-apply-config": {
      const h12 = now.getHours() % 12 || 12;
      const ampm = now.getHours() < 12 ? "AM" : "PM";
      return `[${date.replaceAll("-", "/")} ${pad(h12)}:${pad(now.getMinutes())}:${pad(now.getSeconds())} ${ampm}] [${level}] ${text}`;
    }
    case "os-refresh-config":
      return `[${date} ${time},${ms}] (os-refresh-config) [${level}] ${text}`;
    case "os-collect-config":
      return `${date} ${time}.${ms} ${process.pid} ${level} os-collect-config [-] ${text}`;
    case "ooo-agent":
      return `[${date} ${time},${ms}] (ooo-agent) [${level}] ${text}`;
  }
}

function toLine(e: LogEvent): [Level, string] | undefined {
  switch (e.kind) {
    case "start":
      return ["INFO", `Starting ${e.step}`];
    case "end":
      return ["INFO", `Completed ${e.step} in ${e.seconds.toFixed(3)}s`];
    case "fail":
      return ["ERROR", `${e.step} failed after ${e.seconds.toFixed(3)}s: ${e.error}`];
    case "info":
      return ["INFO", e.text];
    case "warn":
      return ["WARNING", e.text];
    case "error":
      return ["ERROR", e.text];
    case "output":
      return undefined;
  }
}

export interface AgentSinkOptions {
  /** Also append to this file (os-apply-config logs to /var/log/os-apply-config.log as root). */
  file?: string;
}

export function agentSink(agent: LogSource, options: AgentSinkOptions = {}): LogSink {
  return {
    write(e) {
      const line = toLine(e);
      if (!line) return;
      if (RANK[line[0]] < RANK[threshold]) return;
      const text = formatLine(agent, line[0], line[1]) + "\n";
      process.stderr.write(text);
      if (options.file) {
        try {
          appendFileSync(options.file, text);
        } catch {
          // A read-only /var/log must not stop configuration.
        }
      }
    },
  };
}

const RANK: Record<Level, number> = { DEBUG: 0, INFO: 1, WARNING: 2, ERROR: 3 };
let threshold: Level = "INFO";

/** The least severe level printed (os-refresh-config --log-level, os-collect-config --debug). */
export function setLogLevel(level: Level) {
  threshold = level;
}

/** Chatter for --debug / --log-level DEBUG only. */
export function debug(text: string) {
  if (threshold === "DEBUG") log.info(text);
}
