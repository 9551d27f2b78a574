import { log } from "../../lib/log.ts";
import { assignMachines } from "../assign-machines.ts";
import { checkMachines } from "../drivers/bare-metal.ts";
import { driverFor } from "../drivers/index.ts";
import type { ImageCache } from "../images.ts";
import type { RamdiskFiles } from "../provisioning/boot-routes.ts";
import { checkProvisioningHost, ensureProvisioningDhcp, prepareRamdisk } from "../provisioning/provisioning.ts";
import { ensureMetadataService, type StackStore } from "../services.ts";
import type { Stack } from "../stack.ts";
import type { StateDb } from "../state.ts";
import { Machines, stackMachines } from "./machines.ts";

/**
 * What a deploy does for its bare-metal nodes before any machine is
 * touched: the inventory's machines recorded (a deploy enrolls them as
 * `ooo enroll` does), each new node given its machine — the one the stack
 * names, else the first free one of its entry, in order — every one of
 * those machines' BMCs checked at once, and the provisioning network made
 * ready (host, deploy ramdisk, dnsmasq, services on its address).
 *
 * Returns the nodes whose machine cannot be used, with why: they fail
 * without their machine being touched; the others go on.
 */
export async function prepareBareMetal(o: { stack: Stack; stateDir: string; db: StateDb; store: StackStore; cache: ImageCache }): Promise<Map<string, string>> {
  const { stack, db } = o;
  const machines = stackMachines(stack);
  const nodes = stack.nodes.filter((n) => driverFor(n.driver).bareMetal);
  if (!nodes.length) return new Map();
  const book = new Machines(db);
  for (const m of machines) book.enroll(m);

  // Machines: kept by existing nodes, named by the stack, else the first free of the entry.
  const unusable = assignMachines(db, nodes, machines);

  const byMachine = new Map(nodes.filter((n) => n.machine && !unusable.has(n.name)).map((n) => [n.machine!, n.name]));
  const problems = await log.step(`check the BMCs of ${[...byMachine.keys()].join(", ")}`, async () =>
    (
      await Promise.all(
        Object.entries(stack.inventory).map(([, entry]) => {
          const driver = driverFor(entry.driver);
          if (!driver.bareMetal) return [];
          const names = Object.keys(driver.bareMetal.machines(entry as never)).filter((n) => byMachine.has(n));
          return names.length ? checkMachines(driver, entry as Record<string, unknown>, names) : [];
        }),
      )
    ).flat(),
  );
  for (const p of problems) unusable.set(byMachine.get(p.machine)!, `machine ${p.machine}: ${p.message}`);
  for (const [node, why] of unusable) log.error(`${node}: ${why}; its machine is left alone`);

  if (nodes.some((n) => !unusable.has(n.name))) await startProvisioning(o);
  return unusable;
}

/** The provisioning network ready: the host checked, the deploy ramdisk in the cache, dnsmasq with the machines' MACs, the metadata service on the address. */
export async function startProvisioning(o: { stack: Stack; stateDir: string; db: StateDb; store: StackStore; cache: ImageCache }): Promise<RamdiskFiles> {
  const p = o.stack.provisioning!;
  await checkProvisioningHost(p);
  const ramdisk = await prepareRamdisk(o.stack, o.stateDir, o.store, o.cache);
  await ensureProvisioningDhcp(o.stack, o.stateDir, o.db);
  await ensureMetadataService(o.stateDir);
  return ramdisk;
}
