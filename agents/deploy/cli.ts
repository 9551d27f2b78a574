import { readFileSync } from "node:fs";
import { UsageError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { DEPLOY_VERSION, RESULT_LOG_LIMIT, type Command, type DeployInstructions, type RamdiskPhase } from "../../wire/deploy.ts";
import { DeployStepFailed } from "../errors.ts";
import { parseRamdiskCmdline, type RamdiskArgs } from "./cmdline.ts";
import { DeployClient, TokenRejected } from "./client.ts";
import { eraseDisks } from "./erase.ts";
import { install } from "./install.ts";
import { inventory, nics } from "./inventory.ts";
import { logTail } from "./log-tail.ts";
import { pinnedCa } from "./pinned-ca.ts";
import { loadInstalledRoot } from "./restart.ts";
import { powerOff, rebootIntoLoadedKernel, restart } from "./syscalls.ts";
import { bootsIronicAgent } from "./ironic/cmdline.ts";
import { ironicAgentMain } from "./ironic/main.ts";

const USAGE = `usage: ooo-agent deploy [--log FILE]

The deploy ramdisk's agent (element ooo-deploy's /init runs it). Reads the
kernel command line (ooo.md=URL of the metadata service, BOOTIF=MAC, and for
https ooo.ca=SHA256 of the CA certificate served at ooo.ca_url=URL), looks
the machine up by its MACs, reports its hardware and carries out the
deployer's commands: deploy (write the golden disk, then kexec into it),
erase, standby, power off. FILE is the ramdisk's log: its end goes with
every result. Booted by Ironic (ipa-api-url=URL instead of ooo.md=), it is
Ironic's agent: lookup, heartbeats, and the commands of a direct deploy.
`;

/** Seconds the service may hold a command poll open. */
const POLL_WAIT = 30;

export async function deployMain(args: string[]): Promise<number> {
  let logFile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--log" && args[i + 1]) logFile = args[++i];
    else if (args[i] === "-h" || args[i] === "--help") {
      process.stdout.write(USAGE);
      return 0;
    } else throw new UsageError(`ooo-agent deploy: unexpected argument ${args[i]}\n${USAGE}`);
  }
  const cmdline = readFileSync("/proc/cmdline", "utf8");
  // Booted by Ironic's iPXE script: Ironic's agent, not the metadata service's.
  if (bootsIronicAgent(cmdline)) {
    await ironicAgentMain(cmdline, logFile);
    return 0;
  }
  const ramdisk = parseRamdiskCmdline(cmdline);
  // The stack's CA, fetched over plain http and trusted only when its sha256 is the one the boot script pinned.
  const ca = ramdisk.caSha256 ? await pinnedCa(ramdisk.caUrl!, ramdisk.caSha256) : undefined;
  const client = new DeployClient(ramdisk.metadataUrl, { ca });
  for (;;) {
    try {
      await serve(client, ramdisk, logFile);
    } catch (e) {
      if (!(e instanceof TokenRejected)) throw e;
      log.warn(`${e.message}: looking the machine up again`);
    }
  }
}

/**
 * Whether to wait a poll interval before asking for a command again. A
 * quick answer with a new ETag was a change (back to "wait"): the next poll,
 * with that ETag, is held, and a deploy that comes meanwhile is taken at
 * once — sleeping then kept a fast-track deploy waiting up to 5 s. A quick
 * answer without a new ETag (a service that holds no poll) would spin.
 */
export function pauseBeforeNextPoll(quick: boolean, etagBefore: string | undefined, etagNow: string | undefined): boolean {
  return quick && (etagNow === undefined || etagNow === etagBefore);
}

async function serve(client: DeployClient, ramdisk: RamdiskArgs, logFile: string | undefined): Promise<void> {
  const found = nics().map((n) => n.mac);
  const macs = ramdisk.bootMac ? [ramdisk.bootMac, ...found.filter((m) => m !== ramdisk.bootMac)] : found;
  if (!macs.length) throw new DeployStepFailed("lookup", "this machine has no NIC the kernel knows: nothing to look it up by");
  const inv = inventory();
  const answer = await client.lookup({ version: DEPLOY_VERSION, macs, boot_mode: inv.boot_mode, agent: `ooo-agent deploy ${DEPLOY_VERSION}` });
  log.info(`this machine is ${answer.machine} (lookup after ${client.at()} s)`);
  await client.progress({ phase: "lookup", message: `looked up by ${macs[0]}` });
  await client.inventory(inv);
  log.info(`inventory sent: ${inv.cpus.count} CPUs, ${(inv.memory_bytes / 2 ** 30).toFixed(1)} GiB, disks ${inv.disks.map((d) => `${d.name} ${(d.size / 2 ** 30).toFixed(1)} GiB${d.serial ? ` (${d.serial})` : ""}`).join(", ") || "none"}`);
  await client.progress({ phase: "inventory", message: `${inv.disks.length} disks, ${inv.nics.length} NICs` });

  let etag: string | undefined;
  let handled: string | undefined;
  let waiting = false;
  let failures = 0;
  for (;;) {
    const t0 = performance.now();
    let got: Awaited<ReturnType<DeployClient["command"]>>;
    try {
      got = await client.command(etag, POLL_WAIT);
    } catch (e) {
      if (e instanceof TokenRejected) throw e;
      // A service that restarts is back within a second: try again soon, then less often.
      failures++;
      const pause = Math.min(client.pollInterval, 0.5 * 2 ** (failures - 1));
      log.warn(`asking for a command failed: ${(e as Error).message}; again in ${pause} s`);
      await Bun.sleep(pause * 1000);
      continue;
    }
    failures = 0;
    const quick = performance.now() - t0 < 1000;
    const before = etag;
    if (got !== "unchanged") etag = got.etag;
    const command = got === "unchanged" ? undefined : got.command;
    // The same command again (a service without ETags) is not carried out twice: the deployer changes it to retry.
    const fresh = command && command.action !== "wait" && JSON.stringify(command) !== handled;
    if (!command || !fresh) {
      if (command?.action === "wait" && !waiting) {
        waiting = true;
        handled = undefined;
        log.info("standby: waiting for a command");
        await client.progress({ phase: "waiting" });
      }
      if (pauseBeforeNextPoll(quick, before, etag)) await Bun.sleep(client.pollInterval * 1000);
      continue;
    }
    waiting = false;
    handled = JSON.stringify(command);
    log.info(`command: ${command.action}${command.action === "deploy" ? ` of ${command.deploy.image.name} to ${command.deploy.node}` : ""} (${etag ?? "no ETag"}, after a poll of ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    await carryOut(client, command, logFile);
  }
}

async function carryOut(client: DeployClient, command: Command, logFile: string | undefined) {
  switch (command.action) {
    case "deploy":
      return deploy(client, command.deploy, logFile);
    case "erase": {
      await client.progress({ phase: "erasing" });
      try {
        const erased = eraseDisks();
        await client.result({ action: "erase", status: "success", step: "erasing", message: `erased ${erased.join(", ") || "no disk"}`, restart: "none" });
      } catch (e) {
        log.error(`erase failed: ${(e as Error).message}`);
        await client.result({ action: "erase", status: "failure", step: "erasing", message: clip((e as Error).message), restart: "none", log_tail: logTail(logFile, RESULT_LOG_LIMIT - 1024) });
        return;
      }
      if (command.then === "poweroff") return off();
      return;
    }
    case "poweroff":
      return off();
    case "wait":
      return;
  }
}

async function deploy(client: DeployClient, d: DeployInstructions, logFile: string | undefined) {
  let current: RamdiskPhase = "selecting-disk";
  let diskName: string | undefined;
  const phase = async (p: RamdiskPhase, extra: { bytes_done?: number; bytes_total?: number; message?: string } = {}) => {
    if (p !== current || extra.message) log.info(`deploy of ${d.image.name} to ${d.node}: ${p}${extra.message ? ` (${extra.message})` : ""}`);
    current = p;
    await client.progress({ phase: p, ...extra });
  };
  try {
    const installed = await install(client, d, phase, (disk) => (diskName = `/dev/${disk.name}`));
    const done = `${d.image.name} (${d.image.digest}) is on ${diskName}`;
    let noKexec = "";
    if (d.restart === "kexec") {
      await phase("restarting", { message: "loading the installed root's kernel for kexec" });
      const prepared = await loadInstalledRoot(installed.partitions);
      if (prepared.loaded) {
        log.info(`kexec into slot ${prepared.slot}: ${prepared.cmdline}`);
        await client.result({ action: "deploy", status: "success", step: "restarting", message: `${done}; starting it with kexec`, disk: diskName, restart: "kexec" });
        const why = rebootIntoLoadedKernel();
        // Reported as kexec already: the firmware's boot from the disk is the way left.
        log.error(`kexec failed (${why}); restarting through the firmware`);
        restart();
        return;
      }
      noKexec = prepared.reason;
      log.warn(`no kexec (${prepared.reason}): the deployer boots the disk through the firmware`);
    }
    const why = d.restart === "kexec" ? ` (no kexec: ${noKexec})` : "";
    await client.result({ action: "deploy", status: "success", step: "restarting", message: `${done}; boot it from the disk${why}`, disk: diskName, restart: "firmware" });
  } catch (e) {
    if (e instanceof TokenRejected) throw e;
    const step = e instanceof DeployStepFailed ? e.step : current;
    const message = (e as Error).message;
    log.error(`deploy failed at ${step}: ${message}`);
    await client.progress({ phase: "failed", message: clip(`${step}: ${message}`, 4096) });
    await client.result({ action: "deploy", status: "failure", step, message: clip(message), ...(diskName ? { disk: diskName } : {}), restart: "none", log_tail: logTail(logFile, RESULT_LOG_LIMIT - 1024) });
  }
}

function off(): never {
  log.info("powering off");
  const why = powerOff();
  throw new Error(`power off failed: ${why}`);
}

const clip = (s: string, max = 8192) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
