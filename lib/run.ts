import { execa } from "execa";
import { OooError } from "./errors.ts";
import { log } from "./log.ts";

/** A child process failed; carries the tail of its output for the user. */
export class CommandFailed extends OooError {
  readonly code = "command-failed";
  constructor(
    readonly command: string,
    readonly status: number | string,
    readonly tail: string[],
    what?: string,
  ) {
    super(
      `${what ?? command} failed (${typeof status === "number" ? `exit ${status}` : status})` +
        (tail.length ? `; last output:\n${tail.map((l) => `    ${l}`).join("\n")}` : ""),
    );
  }
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Replace the environment instead of extending process.env. */
  cleanEnv?: boolean;
  /** Send every output line to the log (default true). */
  echo?: boolean;
  /** How many trailing lines to keep for error messages (default 20). */
  tailLines?: number;
  /** Name used in the error instead of the command line. */
  what?: string;
  input?: string;
  /** Kill the child after this many milliseconds. */
  timeoutMs?: number;
}

/**
 * Run a command with arguments (never a shell string built from input),
 * stream its merged output into the log line by line, and throw
 * CommandFailed with the tail of that output when it fails.
 */
export async function run(cmd: string, args: string[], options: RunOptions = {}): Promise<void> {
  const keep = options.tailLines ?? 20;
  const tail: string[] = [];
  const child = execa(cmd, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: !options.cleanEnv,
    input: options.input,
    stdin: options.input === undefined ? "ignore" : undefined,
    all: true,
    buffer: false,
    reject: false,
    timeout: options.timeoutMs,
    killSignal: "SIGKILL",
  });
  for await (const line of child.iterable({ from: "all" })) {
    const text = String(line);
    if (options.echo !== false) log.output(text);
    tail.push(text);
    if (tail.length > keep) tail.shift();
  }
  const result = await child;
  if (result.exitCode !== 0 || result.signal) {
    const status = result.timedOut ? "timed out" : result.signal ? `killed by ${result.signal}` : result.exitCode!;
    throw new CommandFailed([cmd, ...args].join(" "), status, tail, options.what);
  }
}

/** Run a short command and return its stdout; stderr goes into the error on failure. */
export async function capture(cmd: string, args: string[], options: Omit<RunOptions, "echo" | "tailLines"> = {}) {
  const result = await execa(cmd, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: !options.cleanEnv,
    input: options.input,
    reject: false,
    timeout: options.timeoutMs,
    stripFinalNewline: false,
  });
  if (result.exitCode !== 0 || result.signal) {
    const status = result.signal ? `killed by ${result.signal}` : result.exitCode!;
    const tail = String(result.stderr || result.stdout).trim().split("\n").slice(-20).filter(Boolean);
    throw new CommandFailed([cmd, ...args].join(" "), status, tail, options.what);
  }
  return String(result.stdout);
}

