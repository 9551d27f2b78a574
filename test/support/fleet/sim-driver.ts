import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { HostService, NodeDriver, PowerState, PowerTarget } from "../../../deployer/drivers/driver.ts";
import { DRIVERS } from "../../../deployer/drivers/index.ts";
import type { InventoryEntry } from "../../../deployer/drivers/index.ts";
import type { Stack } from "../../../deployer/stack.ts";

/**
 * The machine layer of a simulated fleet (bench/fleet.ts, the fleet
 * regression test): a node driver whose machines are a folder each and a
 * power switch. Only benches and tests register it (registerSimDriver): it
 * is not in deployer/drivers/index.ts, and no stack file can name it — a
 * loaded stack is turned to it in memory (simStack).
 *
 * Like a real driver it keeps what it knows in the node's folder, so that
 * any process (`ooo status` with this module preloaded) can read it: `power`
 * (on/off), `config-drive.json` (0600: it holds the node's token) and
 * `disk.json` (the image written). Power changes are told to the fleet
 * (the machines' side: test/support/fleet/fleet.ts) through `onPower`.
 */
export const SIM = "sim";

export interface PowerEvent {
  node: string;
  dir: string;
  /** on: boot · off: stop · reset: reboot (from whatever it was doing). */
  action: "on" | "off" | "reset";
}

/** Where the simulated nodes reach the host's services (as qemu's guest forwards do): the fleet maps them to loopback. */
export const SIM_SERVICE_ADDRESS: Record<HostService["name"], string> = { metadata: "10.0.2.100", store: "10.0.2.101" };

export const SimPool = z.object({ driver: z.literal(SIM) });

const powerFile = (dir: string) => join(dir, "power");
export const configDriveFile = (dir: string) => join(dir, "config-drive.json");
export const diskFile = (dir: string) => join(dir, "disk.json");

export function readPower(dir: string): PowerState {
  try {
    return readFileSync(powerFile(dir), "utf8") === "on" ? "on" : "off";
  } catch {
    return "off";
  }
}

export function simDriver(onPower: (e: PowerEvent) => void = () => {}): NodeDriver {
  const setPower = (dir: string, node: string, target: PowerTarget) => {
    const was = readPower(dir);
    const write = (state: PowerState) => {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(powerFile(dir), state);
    };
    if (target === "off" || target === "soft-off") {
      write("off");
      if (was === "on") onPower({ node, dir, action: "off" });
    } else if (target === "on" || target === "reboot") {
      write("on");
      if (was === "off") onPower({ node, dir, action: "on" });
      else if (target === "reboot") onPower({ node, dir, action: "reset" });
    } else if (was === "on") onPower({ node, dir, action: "reset" }); // reset: the button does nothing to a machine that is off
  };
  return {
    name: SIM,
    pool: SimPool as never,
    check: async () => [],
    serviceUrl: (service, options = {}) => `${options.tls ? "https" : "http"}://${SIM_SERVICE_ADDRESS[service]}`,
    async provision(node, request) {
      mkdirSync(node.dir, { recursive: true, mode: 0o700 });
      writeFileSync(configDriveFile(node.dir), JSON.stringify(request.configDrive), { mode: 0o600 });
      writeFileSync(diskFile(node.dir), JSON.stringify({ digest: request.image.digest }));
    },
    powerState: async (node) => readPower(node.dir),
    setPower: async (node, target) => setPower(node.dir, node.name, target),
    consoleLog: () => undefined,
    async destroy(node) {
      if (readPower(node.dir) === "on") onPower({ node: node.name, dir: node.dir, action: "off" });
      rmSync(node.dir, { recursive: true, force: true });
    },
    describe: async () => ({ machine: "simulated" }),
    endpoint: () => undefined,
  };
}

/** Make the deployer's code find the simulated driver (this process only). */
export function registerSimDriver(onPower?: (e: PowerEvent) => void) {
  DRIVERS[SIM] = simDriver(onPower);
}

/** A loaded stack whose nodes all come from the simulated fleet (no stack file can say so). */
export function simStack(stack: Stack): Stack {
  const pool = "fleet";
  return {
    ...stack,
    inventory: { [pool]: { driver: SIM } as unknown as InventoryEntry },
    roles: stack.roles.map((r) => ({ ...r, pool })),
    nodes: stack.nodes.map((n) => ({ ...n, pool, driver: SIM })),
  };
}
