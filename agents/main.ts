#!/usr/bin/env bun
import { basename } from "node:path";
import { asUserError, UsageError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { HelpRequested } from "./args.ts";
import { agentSink, type AgentName } from "./log.ts";
import { TAKEOVER_COMMANDS } from "./takeover/commands.ts";

/**
 * ooo-agent: the three node agents in one executable (`bun build --compile`
 * makes it standalone: nodes need no runtime). It runs as the agent named by
 * the name it was called by — the elements install symlinks
 * os-collect-config, os-apply-config and os-refresh-config — or by its first
 * argument: `ooo-agent os-apply-config --help`.
 *
 * Each agent's code is loaded only when it runs: evaluating all of them (zod
 * schemas, the store client) at every start costs a second per call in an
 * emulated guest, and os-refresh-config alone starts the binary five times.
 */
const AGENTS: Record<AgentName, () => Promise<(argv: string[]) => Promise<number>>> = {
  "os-collect-config": async () => (await import("./collect/cli.ts")).collectMain,
  "os-apply-config": async () => (await import("./apply/cli.ts")).applyMain,
  "os-refresh-config": async () => (await import("./refresh/cli.ts")).refreshMain,
};

const isAgent = (name: string | undefined): name is AgentName => name !== undefined && name in AGENTS;

export function chooseAgent(argv0: string, args: string[]): { agent?: AgentName; args: string[] } {
  const called = basename(argv0);
  if (isAgent(called)) return { agent: called, args };
  if (isAgent(args[0])) return { agent: args[0], args: args.slice(1) };
  return { args };
}

const USAGE = `usage: ooo-agent AGENT [ARGS...]   (or call it as os-collect-config, os-apply-config, os-refresh-config)

  os-collect-config   poll metadata sources, cache them, run a command on change
  os-apply-config     render configuration files from templates and metadata
  os-refresh-config   run the configuration phases and signal completion

  takeover            in-place upgrade: install the metadata's image into the inactive root slot
  mark-good | trial-failed | trial-watchdog | slots    the root slots (see takeover --help)

  deploy              the deploy ramdisk's agent: look the machine up, report it, write its disk (see deploy --help)
`;

/**
 * The originals' exit codes, which scripts test: 1 for any error (a path
 * the user gave included: where the Python agents crashed with a traceback
 * and 1, ours say which path and why), 11 when os-refresh-config's lock is
 * held; argparse's 2 for a bad command line is the UsageError's own.
 */
const agentExitCode = (code: number) => (code === 11 ? 11 : 1);

/** Run one command and turn what it throws into the originals' exit codes and messages. */
async function guarded(run: () => Promise<number>, exitCode: (code: number) => number = (code) => code): Promise<number> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof HelpRequested) {
      process.stdout.write(e.text);
      return 0;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`);
      return e.exitCode;
    }
    const user = asUserError(e);
    if (user) {
      log.error(user.message);
      if (user.hint) log.error(`hint: ${user.hint}`);
      return exitCode(user.exitCode);
    }
    log.error(`internal error: this is a bug in ooo-agent, please report it with the command and its log.`);
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 70;
  }
}

export async function runAgent(agent: AgentName, args: string[]): Promise<number> {
  log.addSink(agentSink(agent, { file: agent === "os-apply-config" && process.geteuid?.() === 0 ? "/var/log/os-apply-config.log" : undefined }));
  return guarded(async () => (await AGENTS[agent]())(args), agentExitCode);
}

async function runTakeover(command: string, args: string[]): Promise<number> {
  log.addSink(agentSink("ooo-agent", {}));
  return guarded(async () => (await import("./takeover/cli.ts")).takeoverMain(command, args));
}

async function runDeploy(args: string[]): Promise<number> {
  log.addSink(agentSink("ooo-agent", {}));
  return guarded(async () => (await import("./deploy/cli.ts")).deployMain(args));
}

async function main(): Promise<number> {
  const { agent, args } = chooseAgent(process.argv0, process.argv.slice(2));
  if (agent) return runAgent(agent, args);
  if (args[0] === "deploy") return runDeploy(args.slice(1));
  if ((TAKEOVER_COMMANDS as readonly string[]).includes(args[0] ?? "")) return runTakeover(args[0]!, args.slice(1));
  const asked = args[0] === "-h" || args[0] === "--help" || args[0] === "help";
  (asked ? process.stdout : process.stderr).write(USAGE);
  return asked ? 0 : 2;
}

// No top-level await: `bun build --compile --bytecode` needs a CommonJS-compatible entry.
if (import.meta.main) void main().then((code) => (process.exitCode = code));
