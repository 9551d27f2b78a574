import { log } from "../../lib/log.ts";
import { firstInOrder, other, setOrder, setSlot, slotState } from "../../wire/boot.ts";
import { withBootPartition } from "./boot-partition.ts";
import { findNodeDisk } from "./disk.ts";
import { writeNodeState, writeUpgradeReport } from "./reports.ts";

/**
 * The end of a trial boot, one way or the other.
 *
 * markGood (os-refresh-config post-configure.d, after every script
 * succeeded): the booted slot becomes the one to boot from now on. On a
 * node that is not on trial it only confirms what is already so.
 *
 * trialFailed (os-refresh-config error.d, or the trial watchdog): the new
 * root failed to configure (or to do so in time); its record says why, it
 * stops being bootable, and the node reboots into the old root shortly —
 * after os-refresh-config has sent its FAILURE signal.
 */
export async function markGood(): Promise<void> {
  const disk = findNodeDisk();
  await withBootPartition(disk.boot, (boot) => {
    const env = boot.readEnv();
    const here = slotState(env, disk.booted);
    const record = boot.readRecord(disk.booted);
    if (!here.ok || here.try || firstInOrder(env) !== disk.booted) {
      setSlot(env, disk.booted, { ok: true, try: false });
      setOrder(env, disk.booted);
      boot.writeEnv(env);
      log.info(`slot ${disk.booted} (${here.digest ?? "unknown image"}) marked good`);
    }
    if (record && record.status === "trial") {
      boot.writeRecord(disk.booted, { ...record, status: "good" });
      writeUpgradeReport({
        from: record.from,
        to: record.digest,
        result: "upgraded",
        bytes_fetched: record.bytesFetched,
        image_bytes: record.imageBytes,
        seconds: Number((Date.now() / 1000 - record.startedAt).toFixed(1)),
        ...(record.method ? { method: record.method } : {}),
        ...(record.verified ? { verified: record.verified } : {}),
        ...(record.note ? { note: record.note } : {}),
        ...(record.restart ? { restart: record.restart } : {}),
      });
    }
    writeNodeState({ ...disk, trial: false }, env);
  });
}

export async function trialFailed(reason: string, options: { rebootAfterSeconds: number }): Promise<boolean> {
  const disk = findNodeDisk();
  if (!disk.trial) return false;
  const failed = await withBootPartition(disk.boot, (boot) => {
    const env = boot.readEnv();
    const here = slotState(env, disk.booted);
    if (here.ok) return false; // marked good already: a later failure is no trial failure
    const record = boot.readRecord(disk.booted);
    setSlot(env, disk.booted, { ok: false, try: false });
    setOrder(env, other(disk.booted));
    boot.writeEnv(env);
    if (record) boot.writeRecord(disk.booted, { ...record, status: "failed", reason });
    // The FAILURE signal of this run must say it comes from the new root on
    // trial (mark-good, which writes this otherwise, never ran): the deployer
    // then waits for the rollback instead of calling the upgrade failed.
    writeNodeState(disk, env);
    writeUpgradeReport({ from: record?.from, to: here.digest ?? record?.digest ?? "unknown", result: "failed", reason: `${reason}; rolling back to slot ${other(disk.booted)}` });
    log.error(`trial boot of slot ${disk.booted} failed (${reason}); rolling back to slot ${other(disk.booted)}`);
    return true;
  });
  if (!failed) return false;
  // Later, so that the FAILURE signal of this run goes out first. (The
  // process runner is loaded here only: mark-good, at every run, needs none.)
  const { run } = await import("../../lib/run.ts");
  await run("systemd-run", ["--on-active", String(options.rebootAfterSeconds), "--unit", "ooo-rollback-reboot", "systemctl", "reboot"], {
    echo: false,
    what: "scheduling the rollback reboot",
  }).catch(async () => {
    await run("systemctl", ["reboot"], { echo: false });
  });
  return true;
}
