import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { log } from "../../lib/log.ts";
import { IRONIC_DISK_MAP_KEY } from "../../wire/deploy.ts";
import type { ConfigDriveMetadata } from "../../wire/metadata.ts";
import { makeConfigDrive } from "../config-drive.ts";
import type { DriverNode, PowerState, PowerTarget, ProvisionRequest } from "../drivers/driver.ts";
import { DriverFailed, IronicFailed, IronicNodeFailed } from "../errors.ts";
import type { IronicClient, IronicNode, PowerTarget as IronicPowerTarget } from "./client.ts";
import { connectIronic, ironicIdent, startIronic } from "./connect.ts";
import { agentLogTail } from "./deploy-logs.ts";
import { embeddedIronicFiles } from "./embedded.ts";
import { ensureInstance, forgetInstance, instanceOf } from "./instance.ts";
import { IronicPool, isEmbedded } from "./pool.ts";
import { waitForPower, waitForProvisionState } from "./wait.ts";

/**
 * A stack node's steps on an Ironic node (drivers/ironic.ts):
 *
 *   provision  reserve the node for the stack node (its instance UUID), set
 *              instance_info — the golden disk by a signed store URL, raw,
 *              checked by sha256, the machine's root device hints — and move
 *              it to `active` with ooo's own config drive (the config-2
 *              drive every ooo node reads, gzip and base64: Ironic hands it
 *              to the agent as it is); then follow Ironic until `active`:
 *              the machine's power-on into the ramdisk, its agent's call,
 *              the write, Ironic booting the machine from its disk. A
 *              failed deploy carries Ironic's last_error and, for the
 *              embedded Ironic, the agent's log tail.
 *   power      Ironic's power states
 *   undeploy   `deleted` (cleaning is off): the node is `available` again,
 *              its instance UUID and any claim gone
 */
const POLL_MS = 1_000;
const UNDEPLOY_TIMEOUT_MS = 10 * 60_000;
const POWER_TIMEOUT_MS = 2 * 60_000;

const label = (n: IronicNode) => (n.name ? `${n.name} (${n.uuid})` : n.uuid);

/** ooo's config drive as Ironic takes one that is not JSON: the drive image, gzip then base64. */
export async function configDriveText(metadata: ConfigDriveMetadata): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "ooo-ironic-drive-"));
  try {
    const file = join(dir, "config-drive.img");
    await makeConfigDrive(file, metadata);
    return Buffer.from(Bun.gzipSync(readFileSync(file))).toString("base64");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Timeline events from what Ironic's node shows as it deploys (the names ooo's own ramdisk deploys use). */
function deployNotes(note: ProvisionRequest["note"], machine: string) {
  const seen = new Set<string>();
  const once = (key: string, kind: string, detail: Record<string, unknown>) => {
    if (seen.has(key)) return;
    seen.add(key);
    note?.(kind, { machine, by: "ironic", ...detail });
  };
  return (n: IronicNode) => {
    const step = n.deploy_step?.step as string | undefined;
    // The deploy step `deploy` powers the machine on into the ramdisk and waits for its agent's call; any
    // later step means the agent called (a poll may miss a short state: what it implies is noted then).
    const called = step !== undefined && step !== "deploy";
    if (n.provision_state === "wait call-back" || called) once("power-on", "power-on", { boot: "network" });
    if (!called) return;
    once("lookup", "ramdisk-lookup", {});
    if (step === "write_image") once("writing", "ramdisk", { phase: "writing" });
    else if (seen.has("writing")) once("written", "ramdisk", { phase: "restarting", step });
  };
}

/** Why a deploy failed: Ironic's last_error, and the tail of its agent's log where ooo can read it (the embedded Ironic keeps them). */
async function deployFailure(node: DriverNode, client: IronicClient, e: IronicNodeFailed, since: number): Promise<DriverFailed> {
  const pool = IronicPool.parse(node.pool);
  const n = await client.getNode(e.node).catch(() => undefined);
  const tail = isEmbedded(pool) && n ? await agentLogTail(embeddedIronicFiles(node.stateDir).deployLogs, n.uuid, since) : undefined;
  return new DriverFailed(
    node.name,
    `Ironic's deploy of node ${n ? label(n) : e.node} ended "${e.state}": ${e.lastError ?? "Ironic gave no reason"}` +
      (tail ? `\nthe agent's log ends:\n${tail}` : isEmbedded(pool) ? "\n(Ironic kept no log of its agent)" : ""),
  );
}

export async function provisionByIronic(client: IronicClient, node: DriverNode, r: ProvisionRequest): Promise<void> {
  const pool = IronicPool.parse(node.pool);
  const ident = ironicIdent(node);
  const machine = pool.machines?.[node.machine!];
  const instance = ensureInstance(node.dir);
  let n = await client.getNode(ident);
  if (n.maintenance) throw new DriverFailed(node.name, `Ironic node ${label(n)} is in maintenance${n.maintenance_reason ? ` (${n.maintenance_reason})` : ""}`);
  if (n.instance_uuid !== null && n.instance_uuid !== instance) throw new DriverFailed(node.name, `Ironic node ${label(n)} is instance ${n.instance_uuid}'s, not this node's`);
  if (!["available", "active", "deploy failed"].includes(n.provision_state))
    throw new DriverFailed(node.name, `Ironic node ${label(n)} is "${n.provision_state}"${n.target_provision_state ? ` (on its way to "${n.target_provision_state}")` : ""}: it can be deployed when available`);
  if (n.instance_uuid === null) n = await client.patchNode(n.uuid, [{ op: "add", path: "/instance_uuid", value: instance }]);
  await client.setInstanceInfo(n.uuid, {
    image_source: r.image.url,
    image_os_hash_algo: "sha256",
    image_os_hash_value: r.image.sha256,
    // Ironic 21.4 does not read it off an http URL, and would then download the image into the agent's RAM.
    image_disk_format: "raw",
    image_type: "whole-disk",
    display_name: node.name,
    ...(machine?.root_device ? { root_device: machine.root_device } : {}),
    // ooo's agent then fetches only the disk's data (Ironic's own agent ignores it).
    ...(r.image.map ? { [IRONIC_DISK_MAP_KEY]: r.image.map } : {}),
  });
  const since = Date.now();
  await client.setProvisionState(n.uuid, n.provision_state === "active" ? "rebuild" : "active", { configdrive: await configDriveText(r.configDrive) });
  try {
    await waitForProvisionState(client, n.uuid, "active", { timeoutMs: (r.timeoutSeconds ?? 1800) * 1000, intervalMs: POLL_MS, onState: deployNotes(r.note, node.machine!) });
  } catch (e) {
    if (!(e instanceof IronicNodeFailed)) throw e;
    const failure = await deployFailure(node, client, e, since);
    // Ironic leaves a machine whose deploy step failed on, in its ramdisk (for a look at it): ooo's deploys end it off.
    await ironicPower(client, n.uuid, "off").catch((p: Error) => log.warn(`${node.name}: powering Ironic node ${label(n)} off failed: ${p.message}`));
    throw failure;
  }
}

export async function ironicPowerState(client: IronicClient, ident: string): Promise<PowerState> {
  return (await client.getNode(ident)).power_state === "power on" ? "on" : "off";
}

const POWER: Record<PowerTarget, IronicPowerTarget> = { on: "power on", off: "power off", "soft-off": "soft power off", reset: "rebooting", reboot: "rebooting" };

export async function ironicPower(client: IronicClient, ident: string, target: PowerTarget, options: { timeoutSeconds?: number } = {}): Promise<void> {
  const n = await client.getNode(ident);
  // Ironic has deployed and booted it already: on is nothing to do.
  if ((target === "on" && n.power_state === "power on") || (target === "off" && n.power_state === "power off")) return;
  await client.setPowerState(n.uuid, POWER[target], target === "soft-off" ? { timeoutSeconds: options.timeoutSeconds ?? 60 } : {});
  await waitForPower(client, n.uuid, target === "off" || target === "soft-off" ? "power off" : "power on", { timeoutMs: POWER_TIMEOUT_MS + (options.timeoutSeconds ?? 0) * 1000 });
}

/**
 * Give the node back: undeployed when it is ours (`deleted`; with cleaning
 * off it is `available` again, and Ironic drops its instance UUID and its
 * allocation), a reservation that never deployed lifted; a node that is
 * not ours, or gone, is left alone. Idempotent.
 */
export async function undeployByIronic(node: DriverNode): Promise<void> {
  const instance = instanceOf(node.dir);
  if (node.machine && instance) {
    const client = await startIronic(node);
    let n: IronicNode | undefined;
    try {
      n = await client.getNode(ironicIdent(node));
    } catch (e) {
      if (!(e instanceof IronicFailed && e.status === 404)) throw e;
    }
    if (n && n.instance_uuid === instance) {
      if (n.provision_state !== "available") {
        await client.setProvisionState(n.uuid, "deleted");
        n = await waitForProvisionState(client, n.uuid, "available", { timeoutMs: UNDEPLOY_TIMEOUT_MS, intervalMs: POLL_MS });
      }
      if (n.allocation_uuid) await client.deleteAllocation(n.allocation_uuid);
      else if (n.instance_uuid === instance) await client.patchNode(n.uuid, [{ op: "remove", path: "/instance_uuid" }]);
      log.info(`${node.name}: Ironic node ${label(n)} is available again`);
    }
  }
  forgetInstance(node.dir);
  rmSync(node.dir, { recursive: true, force: true });
}

export async function describeIronicNode(node: DriverNode): Promise<Record<string, string>> {
  if (!node.machine) return {};
  const client = connectIronic(node);
  const facts: Record<string, string> = { ironic: client.url, machine: node.machine };
  try {
    const n = await client.getNode(ironicIdent(node));
    Object.assign(facts, { node: label(n), provision_state: n.provision_state, power_state: n.power_state ?? "unknown" });
    if (n.maintenance) facts.maintenance = n.maintenance_reason ?? "yes";
    if (n.last_error) facts.last_error = n.last_error;
  } catch (e) {
    facts.error = (e as Error).message;
  }
  const console = ironicConsoleLog(node);
  return console ? { ...facts, console } : facts;
}

/** The machine's console log, when the inventory names one. */
export function ironicConsoleLog(node: Pick<DriverNode, "pool" | "machine">): string | undefined {
  const pool = IronicPool.safeParse(node.pool);
  return pool.success && node.machine ? pool.data.machines?.[node.machine]?.console_log : undefined;
}
