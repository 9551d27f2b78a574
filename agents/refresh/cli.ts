import { z } from "zod";
import { log } from "../../lib/log.ts";
import { parseWith } from "../../lib/validate.ts";
import { parseArgs, type ParserSpec } from "../args.ts";
import { setLogLevel } from "../log.ts";
import { Lock } from "./lock.ts";
import { defaultBaseDir, PHASES, refresh } from "./refresh.ts";
import { appliedMetadata } from "../apply/metadata.ts";
import { buildSignal, sendSignal, signalTarget } from "./signal.ts";

const spec: ParserSpec = {
  prog: "os-refresh-config",
  description:
    "Runs through all of the phases to ensure configuration is applied and enabled on a machine, then signals the " +
    "outcome to the metadata service. Exits with an error if any phase has a problem. Set OS_REFRESH_CONFIG_BASE_DIR " +
    "to override the base folder.",
  version: "os-refresh-config (ooo-agent) 1.0",
  options: [
    { flags: ["--print-base"], dest: "printBase", kind: "flag", help: "print the base folder and exit" },
    { flags: ["--print-phases"], dest: "printPhases", kind: "flag", help: "print the phases (tab separated) and exit" },
    { flags: ["--log-level"], dest: "logLevel", kind: "value", help: "ERROR, WARN, CRITICAL, INFO or DEBUG (default INFO)" },
    { flags: ["--lockfile"], dest: "lockfile", kind: "value", help: "lock file against concurrent runs (default /var/run/os-refresh-config.lock)" },
    { flags: ["--timeout"], dest: "timeout", kind: "value", help: "seconds until the run is killed" },
    { flags: ["--signal-url"], dest: "signalUrl", kind: "value", help: "where to POST the completion signal (default: the metadata's ooo.signal_url)" },
    { flags: ["--signal-token-file"], dest: "signalTokenFile", kind: "value", help: "file holding the bearer token for the signal" },
    { flags: ["--no-signal"], dest: "noSignal", kind: "flag", help: "do not send the completion signal" },
  ],
};

const Options = z.object({
  printBase: z.boolean().default(false),
  printPhases: z.boolean().default(false),
  logLevel: z.enum(["ERROR", "WARN", "CRITICAL", "INFO", "DEBUG"]).default("INFO"),
  lockfile: z.string().default("/var/run/os-refresh-config.lock"),
  timeout: z.coerce.number().int().positive().optional(),
  signalUrl: z.url().optional(),
  signalTokenFile: z.string().optional(),
  noSignal: z.boolean().default(false),
});

/** os-refresh-config: lock, run the phases, signal. Exit 0, 1 (a phase failed or the signal could not be sent), 11 (locked). */
export async function refreshMain(argv: string[]): Promise<number> {
  const o = parseWith(Options, parseArgs(argv, spec), "invalid os-refresh-config arguments");
  const base = defaultBaseDir();
  if (o.printBase) {
    process.stdout.write(`${base}\n`);
    return 0;
  }
  if (o.printPhases) {
    process.stdout.write(`${PHASES.join("\t")}\n`);
    return 0;
  }
  setLogLevel(o.logLevel === "DEBUG" ? "DEBUG" : o.logLevel === "INFO" ? "INFO" : o.logLevel === "WARN" ? "WARNING" : "ERROR");

  // The token is for the signal only: the phase scripts do not need to see it.
  const env = { ...process.env };
  delete process.env.OOO_SIGNAL_TOKEN;

  const lock = Lock.acquire(o.lockfile);
  try {
    const outcome = await refresh(base, { timeoutSeconds: o.timeout });
    const target = o.noSignal ? undefined : signalTarget({ url: o.signalUrl, tokenFile: o.signalTokenFile }, appliedMetadata(env), env);
    if (target) await sendSignal(target, buildSignal(outcome, target));
    else log.info("No signal URL (metadata ooo.signal_url or --signal-url): not signalling.");
    return outcome.ok ? 0 : 1;
  } finally {
    lock.release();
  }
}
