import { readFileSync, writeFileSync } from "node:fs";
import { log } from "../../lib/log.ts";
import { run } from "../../lib/run.ts";
import { chooseSlot, ENV_KEYS, extraCmdline, SLOT_FILES, type BootEnv, type Slot } from "../../wire/boot.ts";
import { withBootPartition } from "./boot-partition.ts";
import type { NodeDisk } from "./disk.ts";
import { partuuidOf, shuttingDown } from "./host.ts";
import { insideRoot, kexecCmdline, loadKexecKernel, unloadKexecKernel, type KexecResult } from "./kexec.ts";
import type { KernelPreload } from "./preload.ts";
import { mountSlot, NEW_ROOT } from "./slot-mounts.ts";
import { unmountIfMounted } from "../mounts.ts";

/** A slot written and armed: the kernel being loaded for it, and how to say the restart begins. */
export interface Installed {
  preload?: KernelPreload;
  announce: (how: "kexec" | "reboot") => Promise<void>;
}

/**
 * Start the slot the boot environment now picks. kexec when its kernel
 * loads: the same kernel and command line GRUB would boot, without the
 * firmware and the bootloader (seconds under emulation, tens of seconds on
 * servers with long POSTs). The try is used up before, as GRUB does it, so
 * a power cut or a hang from here on lands in the old root just as after
 * a reboot. Anything that stops kexec ends in the plain reboot.
 */
export async function restartInto(disk: NodeDisk, target: Slot, installed?: Installed): Promise<never> {
  const kexec = await prepareKexec(disk, target, installed?.preload).catch((e: Error) => ({ loaded: false as const, reason: e.message }));
  await installed?.announce(kexec.loaded ? "kexec" : "reboot");
  if (kexec.loaded) {
    log.info(`takeover: starting slot ${target} with kexec`);
    // On the console where GRUB would say "ooo: booting slot …": operators (and tests) see which root comes next.
    writeKmsg(`ooo: kexec into slot ${target} trial=${kexec.trial ? 1 : 0}`);
    // --no-block: systemctl returns once the job is queued, before the shutdown stops this service
    // (and kills systemctl with it, which looked like a failure: the kernel was unloaded under systemd's feet).
    const started = await run("systemctl", ["--no-block", "kexec"], { echo: false, what: "kexec" }).then(
      () => true,
      (e: Error) => shuttingDown() || (log.warn(`takeover: ${e.message}; rebooting instead`), false),
    );
    if (started) for (;;) await Bun.sleep(60_000);
    unloadKexecKernel();
    await noteReboot(disk, target, kexec.before).catch((e: Error) => log.warn(`takeover: ${e.message}`));
  } else {
    log.info(`takeover: rebooting into slot ${target} (no kexec: ${kexec.reason})`);
    await noteReboot(disk, target).catch((e: Error) => log.warn(`takeover: ${e.message}`));
  }
  await run("systemctl", ["reboot"], { echo: false, what: "rebooting" }).catch(() => run("reboot", ["-f"], { echo: false }));
  // systemd stops us during shutdown; never report success before that.
  for (;;) await Bun.sleep(60_000);
}

/** Load the kernel GRUB would boot next (it must be `target`'s), unless it is loaded already, and use up its try. */
async function prepareKexec(disk: NodeDisk, target: Slot, preload?: KernelPreload): Promise<{ loaded: true; before: BootEnv; trial: boolean } | { loaded: false; reason: string }> {
  return withBootPartition(disk.boot, async (boot) => {
    const env = boot.readEnv();
    const before = new Map(env);
    const choice = chooseSlot(env);
    if (choice.fallback || choice.slot !== target)
      return { loaded: false, reason: `the boot environment picks ${choice.fallback ? "no slot" : `slot ${choice.slot}`}, not ${target}` };
    const running = readFileSync("/proc/cmdline", "utf8");
    if (extraCmdline(env).some((w) => !running.split(/\s+/).includes(w))) return { loaded: false, reason: `${ENV_KEYS.extraCmdline} changed since this boot` };
    let loaded: KexecResult;
    if (preload?.result && preload.inNewRoot && preload.slot === target && choice.trial) loaded = await preload.result;
    else {
      // One load at a time (the kernel answers EBUSY to a second): the preload ends first.
      await preload?.result;
      const cmdline = kexecCmdline(running, { partuuid: partuuidOf(disk.slots[target]), slot: target, trial: choice.trial });
      mountSlot(disk.slots[target], NEW_ROOT, { readOnly: true });
      try {
        loaded = loadKexecKernel({ kernel: insideRoot(NEW_ROOT, SLOT_FILES.kernel), initrd: insideRoot(NEW_ROOT, SLOT_FILES.initrd), cmdline });
      } finally {
        unmountIfMounted(NEW_ROOT);
      }
    }
    if (!loaded.loaded) return loaded;
    const record = boot.readRecord(target);
    if (record?.status === "trial") boot.writeRecord(target, { ...record, restart: "kexec" });
    boot.writeEnv(env);
    return { loaded: true as const, before, trial: choice.trial };
  });
}

/** The slot's record says it was started by a reboot; `env` puts back the block as it was before a kexec that did not happen. */
async function noteReboot(disk: NodeDisk, target: Slot, env?: BootEnv) {
  await withBootPartition(disk.boot, (boot) => {
    if (env) boot.writeEnv(env);
    const record = boot.readRecord(target);
    if (record?.status === "trial") boot.writeRecord(target, { ...record, restart: "reboot" });
  });
}

/** A line in the kernel log, at a level the console shows even with `quiet`. */
function writeKmsg(line: string) {
  try {
    writeFileSync("/dev/kmsg", `<2>${line}\n`);
  } catch {}
}
