import { accessSync, constants, existsSync, readdirSync, statSync } from "node:fs";
import { constants as os } from "node:os";
import { basename, join } from "node:path";
import { orderEnvironmentFiles, orderRunParts, runPartsRegex } from "../../builder/elements/run-parts.ts";
import { log } from "../../lib/log.ts";

/**
 * dib-run-parts for os-refresh-config, in process: the same scripts in the
 * same order (builder/elements/run-parts.ts holds the rules, shared with
 * the builder's hooks), the same environment.d sourcing, and what the shell
 * script could not give: each script's time, and its output kept (while
 * still passed through) for the completion signal.
 */

/** Executable regular files (symlinks followed) whose names match RUN_PARTS_REGEX, in run order. */
export function listParts(dir: string, env: Record<string, string | undefined> = process.env): string[] {
  const names = readdirSync(dir).filter((name) => {
    const path = join(dir, name);
    try {
      if (!statSync(path).isFile()) return false;
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return orderRunParts(names, runPartsRegex(env));
}

/**
 * The environment the scripts of DIR get: DIR/../environment.d/* sourced
 * by the shell (bash if present), with `set -eu` and xtrace as
 * dib-run-parts does; only exported variables reach the scripts. Without
 * environment.d, our own environment.
 */
export async function phaseEnvironment(dir: string, base: Record<string, string | undefined>): Promise<Record<string, string>> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) clean[k] = v;
  const envDir = join(dir, "..", "environment.d");
  if (!existsSync(envDir) || !statSync(envDir).isDirectory()) return clean;
  const files = orderEnvironmentFiles(readdirSync(envDir))
    .map((f) => join(envDir, f))
    .filter((f) => statSync(f).isFile());
  if (!files.length) return clean;
  const shell = existsSync("/bin/bash") ? "/bin/bash" : "/bin/sh";
  const script = `set -eu; for f in "$@"; do echo "dib-run-parts Sourcing environment file $f" >&2; set -x; . "$f"; set +x; done; exec env -0`;
  const child = Bun.spawn([shell, "-c", script, "env", ...files], { env: clean, stdout: "pipe", stderr: "inherit", stdin: "ignore" });
  const [out, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  if (code !== 0) throw new Error(`sourcing ${envDir} failed (exit ${code})`);
  const env: Record<string, string> = {};
  for (const entry of out.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/** Output kept from a run: stdout and stderr tails for the signal, and each script's last lines. */
export class Capture {
  stdout = "";
  stderr = "";
  constructor(readonly limit: number) {}

  add(stream: "stdout" | "stderr", text: string) {
    const next = this[stream] + text;
    this[stream] = next.length > this.limit ? next.slice(next.length - this.limit) : next;
  }
}

export interface ScriptResult {
  /** PHASE.d/NAME */
  id: string;
  status: number;
  seconds: number;
  /** The script's last lines, stdout and stderr as they came. */
  tail: string[];
}

const TAIL_LINES = 40;

async function pump(stream: ReadableStream<Uint8Array>, onText: (t: string) => void) {
  const decoder = new TextDecoder();
  for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
  const rest = decoder.decode();
  if (rest) onText(rest);
}

/** Run one script: output passed through to ours and kept; its exit status (128+N if killed by signal N). */
export async function runScript(path: string, id: string, env: Record<string, string>, capture: Capture): Promise<ScriptResult> {
  const t0 = performance.now();
  let combined = "";
  const keep = (text: string) => {
    combined += text;
    if (combined.length > 64 * 1024) combined = combined.slice(-32 * 1024);
  };
  const child = Bun.spawn([path], { env, cwd: process.cwd(), stdin: "inherit", stdout: "pipe", stderr: "pipe" });
  await Promise.all([
    pump(child.stdout, (t) => {
      process.stdout.write(t);
      capture.add("stdout", t);
      keep(t);
    }),
    pump(child.stderr, (t) => {
      process.stderr.write(t);
      capture.add("stderr", t);
      keep(t);
    }),
  ]);
  const code = await child.exited;
  const status = child.signalCode ? 128 + (os.signals[child.signalCode as keyof typeof os.signals] ?? 0) : code;
  const lines = combined.replace(/\n$/, "").split("\n");
  return { id, status, seconds: (performance.now() - t0) / 1000, tail: lines.slice(-TAIL_LINES) };
}

/**
 * Run a phase directory. Stops at the first failing script, as
 * dib-run-parts does (`set -e`); returns every script's result.
 */
export async function runParts(dir: string, capture: Capture): Promise<ScriptResult[]> {
  const env = await phaseEnvironment(dir, process.env);
  const results: ScriptResult[] = [];
  for (const name of listParts(dir, env)) {
    const id = `${basename(dir)}/${name}`;
    let result: ScriptResult = { id, status: 126, seconds: 0, tail: [] };
    try {
      await log.step(id, async () => {
        try {
          result = await runScript(join(dir, name), id, env, capture);
        } catch (e) {
          result.tail = [`cannot run ${join(dir, name)}: ${(e as Error).message}`];
        }
        if (result.status !== 0) throw new Error(`exited with status ${result.status}`);
      });
    } catch {
      // the step logged the failure; the caller reports it
    }
    results.push(result);
    if (result.status !== 0) break;
  }
  return results;
}
