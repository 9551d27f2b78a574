import { rmSync } from "node:fs";
import { log } from "../lib/log.ts";
import { removeNode } from "./deploy.ts";
import { NoState } from "./errors.ts";
import { lockStack } from "./lock.ts";
import { stopEmbeddedStore, stopMetadataService } from "./services.ts";
import { stopDnsmasq } from "./provisioning/dnsmasq.ts";
import { stopEmbeddedIronic } from "./ironic/embedded.ts";
import { StateDb } from "./state.ts";
import { parkMachines, standbyServices } from "./bare-metal/park.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * `ooo delete STACK`: every node powered off and its disk, console and
 * sockets removed; then the stack's daemons stopped (the metadata service,
 * the embedded store, the embedded Ironic). The state database stays, with the history and the
 * timelines, and so do the image cache and the embedded store's images, so
 * that deploying again is quick; `purge` removes the whole state folder.
 */
export interface DeleteReport {
  removed: string[];
  stopped: string[];
  purged: boolean;
}

export async function deleteStack(stateDir: string, options: { purge?: boolean } = {}): Promise<DeleteReport> {
  if (!existsSync(join(stateDir, "state.db"))) {
    if (options.purge && existsSync(stateDir)) {
      rmSync(stateDir, { recursive: true, force: true });
      return { removed: [], stopped: [], purged: true };
    }
    throw new NoState(stateDir);
  }
  const db = StateDb.open(stateDir);
  const unlock = lockStack(stateDir, "delete");
  const run = db.startRun("delete");
  const removed: string[] = [];
  const stopped: string[] = [];
  try {
    const nodes = db.nodes();
    // Bare-metal nodes are erased through the deploy ramdisk: it needs the metadata service and dnsmasq.
    await standbyServices(db, stateDir, nodes);
    await Promise.all(
      nodes.map((n) =>
        log.step(`remove ${n.name}`, async () => {
          await removeNode(db, stateDir, n.name, run);
          removed.push(n.name);
        }),
      ),
    );
    // Machines waiting in standby keep their services, unless the stack's state goes too (then they are powered off).
    const waiting = await parkMachines(db, { purge: Boolean(options.purge) });
    if (waiting.length) log.info(`${waiting.join(", ")} wait${waiting.length === 1 ? "s" : ""} in standby: the metadata service and dnsmasq keep running (ooo delete --purge powers them off)`);
    else {
      if (await stopMetadataService(stateDir)) stopped.push("metadata service");
      if (await stopDnsmasq(stateDir)) stopped.push("dnsmasq");
    }
    if (await stopEmbeddedStore(stateDir)) stopped.push("embedded image store");
    if (await stopEmbeddedIronic(stateDir)) stopped.push("embedded Ironic");
    db.endRun(run, "ok");
  } finally {
    unlock();
    db.close();
  }
  if (options.purge) rmSync(stateDir, { recursive: true, force: true });
  return { removed, stopped, purged: Boolean(options.purge) };
}
