import { UsageError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { stateDirOf } from "../deploy.ts";
import { checkMachines } from "../drivers/bare-metal.ts";
import { driverFor } from "../drivers/index.ts";
import { MachinesUnusable } from "../errors.ts";
import { lockStack } from "../lock.ts";
import { loadStack, type Stack } from "../stack.ts";
import { StateDb } from "../state.ts";
import { Machines, stackMachines, type MachineRow } from "./machines.ts";
import { join } from "node:path";
import { ImageCache } from "../images.ts";
import { noteProvisioning } from "../provisioning/settings.ts";
import { storeFor } from "../services.ts";
import { prepareStackTls } from "../stack-tls.ts";
import { ensureEmbeddedMachines } from "../ironic/prepare.ts";
import { startProvisioning } from "./prepare.ts";
import { bringToStandby } from "./ramdisk-ops.ts";

/**
 * `ooo enroll STACK [--standby]`: the stack's bare-metal machines become
 * its own (and the embedded Ironic's are enrolled into it, which verifies
 * their BMCs: ironic/enroll.ts). Every machine's BMC is checked at once (credentials file usable,
 * power state readable) and every problem reported before any machine is
 * touched or recorded; then each is recorded (machines table) as the
 * inventory describes it. With --standby (or `standby: true` in the
 * inventory) the machines are network-booted into the deploy ramdisk and
 * wait there (fast track: a deploy then needs no firmware boot), and
 * `ooo status` shows the hardware their ramdisks reported.
 */
export interface EnrollOptions {
  stateDir?: string;
  /** Bring every machine that no node uses into the ramdisk (else those the inventory marks standby). */
  standby?: boolean;
  imageCache?: string;
}

export interface EnrollReport {
  stateDir: string;
  machines: MachineRow[];
}

/** Every machine's BMC, all at once: MachinesUnusable with each problem, or nothing. */
export async function checkAllMachines(stack: Stack, only?: Set<string>): Promise<void> {
  const problems = (
    await Promise.all(
      Object.entries(stack.inventory).map(async ([, entry]) => {
        const driver = driverFor(entry.driver);
        if (!driver.bareMetal) return [];
        const names = Object.keys(driver.bareMetal.machines(entry as never)).filter((n) => !only || only.has(n));
        return names.length ? checkMachines(driver, entry as Record<string, unknown>, names) : [];
      }),
    )
  ).flat();
  if (problems.length) throw new MachinesUnusable(problems);
}

export async function enroll(stackFile: string, options: EnrollOptions = {}): Promise<EnrollReport> {
  const stack = loadStack(stackFile);
  const machines = stackMachines(stack);
  const ironic = Object.entries(stack.inventory).filter(([, e]) => e.driver === "ironic" && e.url === "embedded");
  if (!machines.length && !ironic.length) throw new UsageError(`${stack.file} has no machines to enroll: its inventory has no ipmi, redfish or embedded ironic entry`);
  for (const entry of new Set([...machines.map((m) => m.pool), ...ironic.map(([pool]) => pool)])) {
    const problems = await driverFor(stack.inventory[entry]!.driver).check(stack.inventory[entry] as never);
    if (problems.length) throw new UsageError(problems.map((p) => `inventory ${entry}: ${p.message}`).join("; "));
  }
  if (machines.length) await log.step(`check ${machines.length} BMC${machines.length === 1 ? "" : "s"}`, () => checkAllMachines(stack));
  const stateDir = stateDirOf(stack.file, options.stateDir);
  const db = StateDb.open(stateDir);
  const unlock = lockStack(stateDir, "enroll");
  const run = db.startRun("enroll");
  let result = "failed";
  try {
    db.setInfo("stack.name", stack.name);
    db.setInfo("stack.file", stack.file);
    const book = new Machines(db);
    for (const m of machines) book.enroll(m);
    // Machines the inventory lost are forgotten, unless a node still runs on one (ooo delete or a deploy removes it first).
    for (const old of book.all()) if (!machines.some((m) => m.name === old.name) && !old.node) book.forget(old.name);
    if (machines.length) log.info(`enrolled ${machines.map((m) => m.name).join(", ")}`);
    const wanted = book.all().filter((m) => !m.node && (options.standby || machines.find((x) => x.name === m.name)?.standby));
    if (wanted.length || ironic.length) {
      // The ramdisk needs what a deploy needs: the stack's CA, the store holding the ramdisk, dnsmasq, the metadata service.
      noteProvisioning(stateDir, stack.provisioning);
      await prepareStackTls(stack, stateDir, db);
      const store = await storeFor(stack, stateDir);
      const ctx = { stack, stateDir, db, store, cache: new ImageCache(options.imageCache ?? join(stateDir, "images")) };
      // The embedded Ironic's machines: enrolled into it (it verifies their BMCs; nothing is powered).
      const problems = await ensureEmbeddedMachines(ctx);
      if (problems.length) throw new MachinesUnusable(problems);
      if (wanted.length) {
        await startProvisioning(ctx);
        await bringToStandby(db, wanted);
      }
    }
    result = "ok";
    return { stateDir, machines: book.all() };
  } finally {
    db.endRun(run, result);
    unlock();
    db.close();
  }
}
