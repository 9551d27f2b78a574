import { log } from "../../lib/log.ts";
import type { NodeMetadata } from "../../wire/metadata.ts";
import { other, setOrder, setSlot, slotState } from "../../wire/boot.ts";
import { withBootPartition } from "./boot-partition.ts";
import { checkBooted } from "./check.ts";
import { decide } from "./decide.ts";
import { findNodeDisk } from "./disk.ts";
import { installInto } from "./install.ts";
import { progressReporter } from "./progress.ts";
import { writeUpgradeReport } from "./reports.ts";
import { restartInto } from "./restart.ts";

/**
 * takeovernode, done on the node itself as the original design wanted, and
 * safely: the new root goes into the *inactive* slot, fetched from the store
 * as the chunks the node lacks (its running root is the seed), verified
 * against the image digest, written as a fresh filesystem; only then does
 * the boot environment arm the slot for one trial boot, and the node
 * restarts into it (kexec, else a reboot). The state partition is never
 * touched. A power cut before the switch leaves the old root booting and
 * the next run starts over; after it, the trial boot either gets marked
 * good (trial.ts) or the bootloader falls back to the old root.
 *
 * This module decides (decide.ts) and acts; install.ts writes and arms the
 * slot (the ways of writing: write-slot.ts), restart.ts starts it (kexec or
 * reboot), progress.ts tells the deployer, host.ts asks the running system.
 */

export interface TakeoverContext {
  metadata: NodeMetadata;
  token?: string;
  /** Reboot when the new root is ready (false: leave it armed, for tests and operators). */
  reboot: boolean;
  /**
   * Run before the configuration (pre-configure.d): a root about to be
   * replaced need not be configured first, but one not yet marked good
   * must be, before its only fallback is overwritten: "deferred".
   */
  beforeConfigure?: boolean;
  /** The caller has asked checkBooted (check.ts) already, and it left the decision to us: not again. */
  checked?: boolean;
}

/**
 * Check the metadata's image against the running root and act. Returns the
 * action taken. "takeover" and "rearm" end in a reboot (when asked to).
 */
export async function takeover(ctx: TakeoverContext): Promise<string> {
  const wanted = { digest: ctx.metadata.ooo.image.digest, attempt: ctx.metadata.ooo.image.attempt ?? 0 };
  const early = ctx.checked ? undefined : await checkBooted(wanted.digest, { beforeConfigure: ctx.beforeConfigure });
  if (early) return early;
  const disk = findNodeDisk();
  const { decision, running } = await withBootPartition(disk.boot, (boot) => {
    const env = boot.readEnv();
    const target = other(disk.booted);
    const running = slotState(env, disk.booted).digest;
    const record = boot.readRecord(target);
    const decision = decide({ booted: disk.booted, env, record, wanted });
    log.info(`takeover: slot ${disk.booted} runs ${running ?? "an unknown image"}; wanted ${wanted.digest}: ${decision.action}`);
    switch (decision.action) {
      case "rolled-back":
        if (decision.unexplained !== undefined) boot.writeRecord(target, { ...record!, status: "failed", unexplained: decision.unexplained, reason: decision.reason });
        writeUpgradeReport({ from: running, to: wanted.digest, result: "rolled-back", reason: decision.reason });
        break;
      case "switch":
        setOrder(env, target);
        boot.writeEnv(env);
        writeUpgradeReport({ from: running, to: wanted.digest, result: "upgraded", bytes_fetched: 0, method: "switch" });
        log.info(`takeover: slot ${target} still holds ${wanted.digest} (known good); switching to it`);
        break;
      case "rearm":
        setSlot(env, target, { ok: false, try: true });
        setOrder(env, target);
        boot.writeEnv(env);
        boot.writeRecord(target, { ...record!, unexplained: decision.unexplained });
        log.info(`takeover: slot ${target} already holds ${wanted.digest}; trying it again`);
        break;
    }
    return { decision, running };
  });
  if (decision.action === "none" || decision.action === "rolled-back") return decision.action;
  if (decision.action === "rearm" || decision.action === "switch") {
    const report = progressReporter(ctx, wanted.digest, performance.now());
    const message = decision.action === "rearm" ? `slot ${decision.target} armed for a trial boot again` : `back to slot ${decision.target}`;
    if (ctx.reboot) await restartInto(disk, decision.target, { announce: (how) => report("rebooting", { message: `${message}; ${how === "kexec" ? "starting it with kexec" : "rebooting into it"}` }) });
    return decision.action;
  }
  const installed = await installInto(ctx, disk, decision.target, wanted, running);
  if (ctx.reboot) await restartInto(disk, decision.target, installed);
  return "takeover";
}
