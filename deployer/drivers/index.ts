import { z } from "zod";
import { UnknownDriver } from "../errors.ts";
import type { NodeDriver } from "./driver.ts";
import { ipmiDriver, IpmiPool } from "./ipmi.ts";
import { ironicDriver, IronicPool } from "./ironic.ts";
import { qemuDriver, QemuPool } from "./qemu.ts";
import { redfishDriver, RedfishPool } from "./redfish.ts";

/**
 * The node drivers ooo has, by the name a stack file's inventory uses. A new
 * driver is one file behind NodeDriver plus one line here and one schema
 * in InventoryEntry.
 */
export const DRIVERS: Record<string, NodeDriver<any>> = {
  qemu: qemuDriver,
  ipmi: ipmiDriver,
  redfish: redfishDriver,
  ironic: ironicDriver,
};

/** An inventory entry: the `driver` key picks the schema of the rest. */
export const InventoryEntry = z.discriminatedUnion("driver", [QemuPool, IpmiPool, RedfishPool, IronicPool]);
export type InventoryEntry = z.infer<typeof InventoryEntry>;

export function driverFor(name: string): NodeDriver {
  const driver = DRIVERS[name];
  if (!driver) throw new UnknownDriver(name, Object.keys(DRIVERS));
  return driver;
}
