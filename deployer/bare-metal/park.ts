import { existsSync, readFileSync } from "node:fs";
import { log } from "../../lib/log.ts";
import { driverFor } from "../drivers/index.ts";
import { dnsmasqFiles, ensureDnsmasq } from "../provisioning/dnsmasq.ts";
import { ensureMetadataService } from "../services.ts";
import type { NodeRow, StateDb } from "../state.ts";
import { Machines } from "./machines.ts";

/**
 * `ooo delete` and the machines: erasing a bare-metal node's disk takes
 * the deploy ramdisk, so its services run while nodes are removed; after,
 * machines waiting in standby keep them (their ramdisks poll the metadata
 * service), unless the state goes too (--purge): then they are powered off.
 */
export async function standbyServices(db: StateDb, stateDir: string, nodes: NodeRow[]): Promise<void> {
  if (!nodes.some((n) => driverFor(n.driver).bareMetal)) return;
  await ensureMetadataService(stateDir);
  const f = dnsmasqFiles(stateDir);
  if (existsSync(f.config)) await ensureDnsmasq(stateDir, readFileSync(f.config, "utf8"));
}

/** The machines still waiting in the ramdisk; with purge, powered off first (and then none). */
export async function parkMachines(db: StateDb, options: { purge: boolean }): Promise<string[]> {
  const book = new Machines(db);
  const waiting = book.all().filter((m) => m.state === "ramdisk");
  if (!options.purge) return waiting.filter((m) => book.ramdiskAlive(m)).map((m) => m.name);
  await Promise.all(
    waiting.map(async (m) => {
      const bm = driverFor(m.driver).bareMetal!;
      await bm
        .bmc(m.config as never, m.name)
        .power("off")
        .catch((e: Error) => log.warn(`machine ${m.name}: powering it off failed: ${e.message}`));
      book.disarm(m.name, "off");
    }),
  );
  return [];
}
