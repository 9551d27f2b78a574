import { chmodSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { log } from "../../lib/log.ts";
import { sha256File } from "../../lib/sparse.ts";
import { DEPLOY_VERSION, type Command } from "../../wire/deploy.ts";
import { chooseRootDisk, deployBytes } from "../../wire/root-device.ts";
import { waitPower } from "../bmc/bmc.ts";
import { makeConfigDrive } from "../config-drive.ts";
import type { BareMetalMachine } from "../drivers/driver.ts";
import { driverFor } from "../drivers/index.ts";
import { DriverFailed } from "../errors.ts";
import { mapDownload, type ResolvedImage } from "../images.ts";
import { configDrive } from "../node-metadata.ts";
import { beginImageWrite, driverNode, endpointsFor, type NodeContext, type WaitResult } from "../node-ops.ts";
import { ConsoleWatch, consoleSize, consoleTail } from "../node-watch.ts";
import type { NodeSpec } from "../stack.ts";
import type { StateDb } from "../state.ts";
import { machineEventName, Machines, type MachineRow, WAIT } from "./machines.ts";

/**
 * A node's steps on a bare-metal machine, where the deploy ramdisk writes
 * the disk (node-ops.ts hands these over for drivers with `bareMetal`):
 *
 *   provision  the deploy command recorded for the machine — the store URL of
 *              the golden disk with a read token, root device hints, the
 *              node's config drive (made here, served to the ramdisk only) —
 *              and, when the ramdisk already reported the machine's disks,
 *              the root disk chosen now: a disk too small fails the node
 *              before its machine is touched
 *   power on   the machine armed for one lookup, network boot once, powered
 *              on through its BMC; nothing at all when its ramdisk waits in
 *              standby (fast track: the command reaches it at once)
 *   wait       for the ramdisk's result: kexec (the node boots), or a boot
 *              from disk through the BMC, or a failure — the node failed
 *              with the step and the ramdisk's log, the machine powered off
 */

export function machineOf(row: { name: string; driver: string; pool_config: Record<string, unknown>; machine: string | null }) {
  const driver = driverFor(row.driver);
  const bm = driver.bareMetal!;
  if (!row.machine) throw new DriverFailed(row.name, "has no machine assigned (this is a bug in ooo)");
  const spec: BareMetalMachine | undefined = bm.machines(row.pool_config as never)[row.machine];
  if (!spec) throw new DriverFailed(row.name, `its machine ${row.machine} is not in its inventory entry any more`);
  return { name: row.machine, spec, bmc: bm.bmc(row.pool_config as never, row.machine), driver };
}

export async function provisionByRamdisk(ctx: NodeContext, spec: NodeSpec, image: ResolvedImage): Promise<void> {
  const { db, run } = ctx;
  const row = db.node(spec.name)!;
  const machine = machineOf(row);
  const book = new Machines(db);
  const known = book.get(machine.name)?.inventory;
  // Its disks are known (its ramdisk reported them): a deploy that cannot fit fails here, before the machine is touched.
  if (known) {
    const choice = chooseRootDisk(known.disks, deployBytes(image.disk.size), machine.spec.root_device);
    if ("problem" in choice) throw new DriverFailed(spec.name, `machine ${machine.name} (as its ramdisk reported it): ${choice.problem}`);
  }
  const { token } = beginImageWrite(ctx, spec, image, row.serial, { machine: machine.name });
  const node = driverNode(ctx.stateDir, row);
  const endpoints = endpointsFor(machine.driver, ctx.store, Boolean(ctx.tls), ctx.stateDir);
  // The config drive holds the node's token: the folder is the node's and ooo's only; the ramdisk gets it over https.
  mkdirSync(node.dir, { recursive: true, mode: 0o700 });
  chmodSync(node.dir, 0o700);
  const drive = join(node.dir, "config-drive.img");
  await makeConfigDrive(`${drive}.new`, configDrive(spec.name, token, endpoints, ctx.pollingIntervalSeconds, ctx.trust));
  renameSync(`${drive}.new`, drive);
  const driveSum = sha256File(drive);
  // The store's CA when it is not the system's (the stack's own for the embedded store): the ramdisk verifies the store by it.
  const storeCa = ctx.store.ca;
  const blobUrl = (sha256: string) => `${endpoints.store!.url}/v2/ooo/blobs/sha256:${sha256}`;
  const map = await mapDownload(image, blobUrl);
  const command: Command = {
    version: DEPLOY_VERSION,
    action: "deploy",
    deploy: {
      node: spec.name,
      image: {
        name: image.name,
        digest: image.digest,
        disk: { url: blobUrl(image.disk.sha256), ...image.disk },
        // With its map, the ramdisk fetches only the disk's data (a fraction of its size), by Range; with its pack, that data compressed.
        ...(map ? { map } : {}),
      },
      ...(ctx.store.readToken ? { store_token: ctx.store.readToken } : {}),
      ...(storeCa ? { store_ca: storeCa } : {}),
      ...(machine.spec.root_device ? { root_device: machine.spec.root_device } : {}),
      config_drive: { url: `${endpoints.metadataUrl}/v1/ramdisk/${encodeURIComponent(machine.name)}/config-drive`, sha256: driveSum.sha256, size: driveSum.size },
      restart: "kexec",
    },
  };
  book.assign(machine.name, spec.name);
  book.setCommand(machine.name, command);
  db.event(spec.name, "deploy-command", { machine: machine.name, image: image.digest, disk_bytes: image.disk.size }, { run });
}

/** Boot the machine into the ramdisk: armed for its lookup, network boot once, on (or reset when it runs something else). */
async function bootRamdisk(book: Machines, machine: ReturnType<typeof machineOf>, command?: Command) {
  const m = book.get(machine.name)!;
  book.arm(machine.name, command ?? m.command);
  await machine.bmc.setBootDevice("network", { mode: machine.spec.boot_mode });
  await machine.bmc.power((await machine.bmc.powerState()) === "on" ? "reset" : "on");
}

/**
 * Sent to the network, a machine may boot its disk instead: a BMC that
 * drops its one-time boot override (a known habit of real BMCs; seen once on
 * the test bed's SeaBIOS under load, where the erase then waited 15 min for
 * a ramdisk that never came). When the console shows an installed node's
 * ready line while the machine is still armed (its ramdisk never looked
 * itself up), it is sent to the network once more; a second time is an
 * error that says so. Machines without a console log are not watched.
 * Call the returned check from a wait loop; `from` is the console's size
 * before the power action.
 */
export function diskBootGuard(book: Machines, machine: ReturnType<typeof machineOf>, from = consoleSize(machine.spec.console_log)) {
  const file = machine.spec.console_log;
  let watch = new ConsoleWatch(file, from);
  let retried = false;
  return async () => {
    if (!file || !watch.ready() || !book.get(machine.name)?.armed) return;
    const what = `booted its disk, not the deploy ramdisk (its console shows an installed node's ready line)`;
    if (retried) throw new DriverFailed(machine.name, `${what}, twice: its BMC does not follow a one-time network boot; check the firmware's boot order`);
    retried = true;
    log.warn(`machine ${machine.name} ${what}: sending it to the network once more`);
    watch = new ConsoleWatch(file, consoleSize(file));
    await bootRamdisk(book, machine);
  };
}

export async function powerOnByRamdisk(ctx: NodeContext, name: string): Promise<void> {
  const { db, run } = ctx;
  const row = db.node(name)!;
  const machine = machineOf(row);
  const book = new Machines(db);
  const node = driverNode(ctx.stateDir, row);
  db.transition(name, "powering-on", { run, fields: { console_offset: consoleSize(machine.driver.consoleLog(node)) } });
  const m = book.get(machine.name)!;
  if (book.ramdiskAlive(m)) {
    const now = Date.now();
    db.event(name, "fast-track", { machine: machine.name, phase: m.phase }, { run, at: now });
    db.transition(name, "booting", { run, fields: { powered_on_at: now, waiting_since: now }, detail: { fastTrack: true } });
    return;
  }
  await bootRamdisk(book, machine);
  const now = Date.now();
  db.event(name, "power-on", { machine: machine.name, boot: "network" }, { run, at: now });
  db.transition(name, "booting", { run, fields: { powered_on_at: now, waiting_since: now } });
}

async function powerOffQuietly(name: string, machine: ReturnType<typeof machineOf>) {
  await machine.bmc.power("off").catch((e: Error) => log.warn(`${name}: powering machine ${machine.name} off failed: ${e.message}`));
}

/**
 * Until the ramdisk's result for the deploy command: ok once the node's own
 * boot has begun (kexec, or the boot from disk this starts); a failure or
 * a deadline fails the node and powers its machine off.
 */
export async function waitForRamdisk(ctx: NodeContext, name: string): Promise<WaitResult> {
  const { db, run } = ctx;
  const start = db.node(name)!;
  const machine = machineOf(start);
  const book = new Machines(db);
  const node = driverNode(ctx.stateDir, start);
  const consoleFile = machine.driver.consoleLog(node);
  const deadline = (start.waiting_since ?? Date.now()) + ctx.signalTimeoutSeconds * 1000;
  const diskBoot = diskBootGuard(book, machine, start.console_offset ?? 0);
  const fail = async (error: string, why: string) => {
    db.transition(name, "failed", { run, fields: { error }, detail: { why }, onlyFrom: ["writing-image", "powering-on", "booting"] });
    await powerOffQuietly(name, machine);
    book.disarm(machine.name, "off");
    db.event(name, "power-off", { machine: machine.name, why }, { run });
    return { ok: false as const, error: db.node(name)?.error ?? error };
  };
  for (;;) {
    const row = db.node(name);
    if (!row) return { ok: false, error: "the node was deleted meanwhile" };
    const m = book.get(machine.name)!;
    if (row.state === "failed") return fail(row.error ?? "failed", "deploy ramdisk failed");
    if (m.state === "node") return { ok: true };
    const r = m.result;
    if (r?.action === "deploy" && r.status === "success" && r.restart === "firmware") {
      log.info(`${name}: the ramdisk could not kexec; booting machine ${machine.name} from its disk`);
      await machine.bmc.setBootDevice("disk", { mode: machine.spec.boot_mode });
      await machine.bmc.power("reset");
      book.disarm(machine.name, "node");
      db.event(name, "restart-firmware", { machine: machine.name }, { run });
      return { ok: true };
    }
    const wrongBoot = await diskBoot().then(
      () => undefined,
      (e: Error) => e.message,
    );
    if (wrongBoot) return fail(wrongBoot, "booted its disk");
    if (Date.now() > deadline)
      return fail(
        `no result from the deploy ramdisk within ${ctx.signalTimeoutSeconds}s (machine ${machine.name}, ${m.phase ? `last phase ${m.phase}` : "it never looked itself up"}); last console lines:\n${consoleTail(consoleFile, 25, row.console_offset ?? 0)}`,
        "timeout",
      );
    await Bun.sleep(500);
  }
}

/** Deploys already under way on a machine's ramdisk: a resumed wait knows it is still there. */
export function inRamdisk(db: StateDb, row: { machine: string | null }): boolean {
  return row.machine !== null && new Machines(db).get(row.machine)?.state === "ramdisk";
}

const ERASE_TIMEOUT_MS = 15 * 60_000;
/** How long a ramdisk back in standby may take to say so (its next command poll). */
const STANDBY_ACK_MS = 60_000;

/**
 * `ooo delete` of a bare-metal node: the machine boots the ramdisk (or its
 * waiting ramdisk is told), which erases its disks' partition tables and
 * then waits in standby or powers off, as the inventory says. The machine
 * is free again either way; a failed erase is reported, not fatal.
 */
export async function releaseMachine(db: StateDb, row: { name: string; driver: string; pool_config: Record<string, unknown>; machine: string | null }, run?: number): Promise<void> {
  if (!row.machine) return;
  const book = new Machines(db);
  const m = book.get(row.machine);
  if (!m) return;
  const machine = machineOf(row);
  const then = machine.spec.standby ? "standby" : "poweroff";
  const command: Command = { version: DEPLOY_VERSION, action: "erase", then };
  try {
    await log.step(`${row.name}: erase machine ${machine.name}'s disks through the deploy ramdisk, then ${then}`, async () => {
      const diskBoot = diskBootGuard(book, machine);
      if (book.ramdiskAlive(m)) book.setCommand(machine.name, command);
      else await bootRamdisk(book, machine, command);
      db.event(row.name, "erase-command", { machine: machine.name, then }, { run });
      for (const deadline = Date.now() + ERASE_TIMEOUT_MS; ; await Bun.sleep(500)) {
        await diskBoot();
        const r = book.get(machine.name)?.result;
        if (r?.action === "erase" && r.status === "success") break;
        if (r?.action === "erase") throw new Error(`the ramdisk failed to erase: ${r.message}`);
        if (Date.now() > deadline) throw new Error(`no erase result within ${ERASE_TIMEOUT_MS / 60_000} min (last phase ${book.get(machine.name)?.phase ?? "none"})`);
      }
      if (then === "poweroff") {
        if (!(await waitPower(machine.bmc, "off", 60_000))) await machine.bmc.power("off");
        book.disarm(machine.name, "off");
      } else {
        // Back to standby: told to wait, and it says so (a fast-track deploy may then come at any time).
        book.setCommand(machine.name, WAIT);
        for (const deadline = Date.now() + STANDBY_ACK_MS; book.get(machine.name)?.phase !== "waiting"; await Bun.sleep(200))
          if (Date.now() > deadline) throw new Error(`erased, but its ramdisk did not report standby within ${STANDBY_ACK_MS / 1000} s`);
      }
    });
  } catch (e) {
    log.warn(`${row.name}: ${(e as Error).message}; powering machine ${machine.name} off`);
    await powerOffQuietly(row.name, machine);
    book.disarm(machine.name, "off");
  } finally {
    book.assign(machine.name, null);
  }
}

/** Machines that no node uses, booted into the ramdisk to wait (enroll --standby): until each reported its hardware. */
export async function bringToStandby(db: StateDb, machines: MachineRow[], timeoutMs = 15 * 60_000): Promise<void> {
  const book = new Machines(db);
  const waiting = (name: string) => book.ramdiskAlive(book.get(name)!) && book.get(name)!.inventory !== null && book.get(name)!.phase === "waiting";
  const todo = machines.filter((m) => !book.ramdiskAlive(m));
  const guards = await Promise.all(
    todo.map(async (m) => {
      const machine = machineOf({ name: m.name, driver: m.driver, pool_config: m.config, machine: m.name });
      const guard = diskBootGuard(book, machine);
      await bootRamdisk(book, machine, WAIT);
      db.event(machineEventName(m.name), "power-on", { machine: m.name, boot: "network", why: "standby" });
      return guard;
    }),
  );
  await log.step(`wait for ${machines.map((m) => m.name).join(", ")} to report from the ramdisk`, async () => {
    for (const deadline = Date.now() + timeoutMs; !machines.every((m) => waiting(m.name)); await Bun.sleep(500)) {
      for (const guard of guards) await guard();
      if (Date.now() > deadline)
        throw new DriverFailed(
          machines.filter((m) => !waiting(m.name)).map((m) => m.name).join(", "),
          `did not reach standby in the ramdisk within ${timeoutMs / 60_000} min (its console log says why, if the inventory names one)`,
        );
    }
  });
}
