import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { UsageError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { ENV_KEYS, slotState, SLOTS } from "../../wire/boot.ts";
import { withBootPartition } from "./boot-partition.ts";
import { findNodeDisk, NotAnOooDisk } from "./disk.ts";
import { TakeoverFailed } from "../errors.ts";
import { writeUpgradeReport } from "./reports.ts";
import { appliedMetadata } from "../apply/metadata.ts";
import { toPlain } from "../pyjson/value.ts";
import { checkBooted, namedDigest } from "./check.ts";
import { markGood, trialFailed } from "./trial.ts";

/** Left by `takeover --before-configure` when it had to wait for the configuration: post-configure.d takes over then. */
const TAKEOVER_DEFERRED = "/run/ooo/takeover-deferred";

const USAGE = `usage: ooo-agent takeover [--no-reboot] [--before-configure]
                                           install the metadata's image into the inactive root slot and reboot into it;
                                           --before-configure: wait (leaving ${TAKEOVER_DEFERRED}) if the booted slot is not marked good
       ooo-agent mark-good                 the booted root slot is good: boot it from now on
       ooo-agent trial-failed [REASON]     a trial boot failed: fall back to the other slot (error.d)
       ooo-agent trial-watchdog SECONDS    the trial's time is up: fail it unless it was marked good
       ooo-agent slots                     show the root slots
`;

const FLAGS: Record<string, string[]> = { takeover: ["--no-reboot", "--before-configure"] };

/** `ooo-agent takeover|mark-good|trial-failed|trial-watchdog|slots` (the node side of in-place upgrades). */
export async function takeoverMain(command: string, args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    process.stdout.write(USAGE);
    return 0;
  }
  // A mistyped flag is refused, not taken for a run without it (outside the try: it is no takeover failure).
  const unknown = args.filter((a) => a.startsWith("-") && !(FLAGS[command] ?? []).includes(a));
  if (unknown.length) throw new UsageError(`${command}: unknown option ${unknown.join(", ")}\n${USAGE}`);
  try {
    return await dispatch(command, args);
  } catch (e) {
    // A node that does not boot from slots (a root booted some other way) has nothing to do here.
    if (e instanceof NotAnOooDisk && command !== "slots") {
      log.info(`${command}: ${e.message}; nothing to do`);
      return 0;
    }
    // A failed takeover is reported in the signal (upgrade.json); the node goes on configuring the root it runs.
    if (e instanceof TakeoverFailed) {
      log.error(`takeover failed: ${e.message}; this node keeps running its current root`);
      return 0;
    }
    // Even a bug in the takeover must not leave the node unconfigured: report it and go on.
    if (command === "takeover") {
      const message = e instanceof Error ? e.message : String(e);
      log.error(`internal error in the takeover (a bug in ooo-agent): ${message}; this node keeps running its current root`);
      if (e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
      try {
        writeUpgradeReport({ to: "unknown", result: "failed", reason: `internal error: ${message}` });
      } catch {}
      return 0;
    }
    throw e;
  }
}

async function dispatch(command: string, args: string[]): Promise<number> {
  switch (command) {
    case "takeover": {
      const beforeConfigure = args.includes("--before-configure");
      rmSync(TAKEOVER_DEFERRED, { force: true });
      const applied = appliedMetadata();
      const named = namedDigest(applied);
      if (named === null) {
        log.info("takeover: the metadata has no ooo block (no image named); nothing to do");
        return 0;
      }
      // Nearly every run ends here (the slot runs the image named), before
      // the store client and the metadata schema are even loaded.
      let action: string | undefined = named === undefined ? undefined : await checkBooted(named, { beforeConfigure });
      if (action === undefined) {
        const [{ parseWith }, { NodeMetadata }, { tokenFromCollectConfig }, { takeover }] = await Promise.all([
          import("../../lib/validate.ts"),
          import("../../wire/metadata.ts"),
          import("../refresh/signal.ts"),
          import("./takeover.ts"),
        ]);
        const metadata = parseWith(NodeMetadata, toPlain(applied), "the node's metadata (OS_CONFIG_FILES)");
        // Phase scripts do not get OOO_SIGNAL_TOKEN (os-refresh-config keeps it from them); root reads it from the collector's config.
        const token = process.env.OOO_SIGNAL_TOKEN ?? tokenFromCollectConfig();
        action = await takeover({ metadata, token, reboot: !args.includes("--no-reboot"), beforeConfigure, checked: named !== undefined });
      }
      if (action === "deferred") {
        mkdirSync(dirname(TAKEOVER_DEFERRED), { recursive: true });
        writeFileSync(TAKEOVER_DEFERRED, "");
      }
      log.info(`takeover: ${action}`);
      return 0;
    }
    case "mark-good":
      await markGood();
      return 0;
    case "trial-failed": {
      const script = process.env.OOO_FAILED_SCRIPT;
      const tail = process.env.OOO_FAILED_OUTPUT_TAIL;
      const reason = args.join(" ") || (script ? `${script} failed${tail ? `:\n${tail}` : ""}` : "configuration failed");
      await trialFailed(reason, { rebootAfterSeconds: 15 });
      return 0;
    }
    case "trial-watchdog": {
      const seconds = Number(args[0] ?? 300);
      if (!(seconds >= 0)) throw new UsageError(`trial-watchdog: SECONDS must be a number, not ${JSON.stringify(args[0])}`);
      const failed = await trialFailed(`no signal within ${seconds} s: the new root was not configured in time`, { rebootAfterSeconds: 1 });
      if (!failed) log.info("trial-watchdog: the booted slot is good; nothing to do");
      return 0;
    }
    case "slots": {
      const disk = findNodeDisk();
      await withBootPartition(disk.boot, (boot) => {
        const env = boot.readEnv();
        process.stdout.write(`booted ${disk.booted}${disk.trial ? " (on trial)" : ""}; ORDER=${env.get(ENV_KEYS.order)}\n`);
        for (const s of SLOTS) {
          const st = slotState(env, s);
          process.stdout.write(`slot ${s} ${disk.slots[s]}: ok=${st.ok} try=${st.try} digest=${st.digest ?? "-"} record=${JSON.stringify(boot.readRecord(s) ?? null)}\n`);
        }
      });
      return 0;
    }
    default:
      process.stderr.write(USAGE);
      throw new UsageError(`unknown command ${command}`);
  }
}

export { TAKEOVER_COMMANDS } from "./commands.ts";
