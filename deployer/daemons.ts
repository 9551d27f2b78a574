import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ServiceFailed } from "./errors.ts";

/**
 * Detached helper processes of a stack (the metadata service, the embedded
 * image store): started by an ooo command, they run on after it exits, in
 * their own session, with a pidfile and a log in the state folder. A pid is
 * trusted only if that process's command line still names the daemon (a
 * recycled pid is not ours).
 */
export const CLI = resolve(import.meta.dir, "../cli/ooo.ts");

export interface Daemon {
  /** For messages: "metadata service". */
  name: string;
  pidFile: string;
  logFile: string;
  /** Every one of these must appear in the process's command line. */
  match: string[];
}

export function daemonPid(d: Daemon): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(d.pidFile, "utf8").trim());
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"))) return undefined;
    if (d.match.every((m) => cmdline.includes(m))) return pid;
  } catch {}
  return undefined;
}

function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Start `argv` detached; wait until `ready` says yes (it is given the pid). */
export async function startDaemon(
  d: Daemon,
  argv: string[],
  options: { env?: Record<string, string | undefined>; ready: (pid: number) => Promise<boolean>; timeoutMs?: number },
): Promise<number> {
  mkdirSync(dirname(d.pidFile), { recursive: true });
  const out = openSync(d.logFile, "a");
  const child = spawn(argv[0]!, argv.slice(1), {
    detached: true,
    stdio: ["ignore", out, out],
    env: { ...process.env, NO_COLOR: "1", ...options.env },
  });
  closeSync(out);
  const pid = child.pid;
  if (pid === undefined) throw new ServiceFailed(d.name, "could not be started", d.logFile);
  child.unref();
  writeFileSync(d.pidFile, `${pid}\n`);
  let exited: string | undefined;
  child.once("exit", (code, signal) => (exited = signal ? `killed by ${signal}` : `exit ${code}`));
  for (const deadline = Date.now() + (options.timeoutMs ?? 30_000); ; await Bun.sleep(50)) {
    if (exited) throw new ServiceFailed(d.name, `it stopped (${exited}):\n${logTail(d.logFile)}`, d.logFile);
    if (await options.ready(pid).catch(() => false)) return pid;
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      throw new ServiceFailed(d.name, `not ready after ${(options.timeoutMs ?? 30_000) / 1000}s:\n${logTail(d.logFile)}`, d.logFile);
    }
  }
}

/** SIGTERM, then SIGKILL after the timeout. True if it was running. */
export async function stopDaemon(d: Daemon, timeoutMs = 10_000): Promise<boolean> {
  const pid = daemonPid(d);
  if (pid === undefined) {
    rmSync(d.pidFile, { force: true });
    return false;
  }
  process.kill(pid, "SIGTERM");
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await Bun.sleep(50)) if (ended(pid)) break;
  if (!ended(pid)) process.kill(pid, "SIGKILL");
  for (let i = 0; i < 100 && !ended(pid); i++) await Bun.sleep(50);
  rmSync(d.pidFile, { force: true });
  return true;
}

/**
 * The process has finished exiting: gone, or a zombie. Not its command line
 * gone: the kernel empties it while the process still closes its files
 * (its listening sockets among them), and a daemon started again then may
 * find its port taken (seen with Ironic, which takes a second to exit).
 */
function ended(pid: number): boolean {
  try {
    return /^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}

/** A TCP port on 127.0.0.1 nobody listens on now (the old one first, if free). */
export function freePort(preferred?: number): number {
  for (const port of [preferred, 0]) {
    if (port === undefined) continue;
    try {
      const s = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
      const got = s.port;
      s.stop(true);
      return got;
    } catch {}
  }
  throw new Error("no free TCP port on 127.0.0.1");
}

export function readPort(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const n = Number(readFileSync(file, "utf8").trim());
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}
