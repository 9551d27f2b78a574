import { rmSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import type { Problem } from "../../lib/errors.ts";
import { BootMode, normaliseMac, RootDeviceHints } from "../../wire/deploy.ts";
import { waitPower, type Bmc } from "../bmc/bmc.ts";
import { BmcCredentialsUnusable, BmcFailed, DriverFailed } from "../errors.ts";
import type { BareMetalMachine, DriverNode, NodeDriver, PowerTarget } from "./driver.ts";

/**
 * The shared core of the drivers for real machines (ipmi.ts, redfish.ts):
 * an inventory entry lists machines — each with its BMC, the MACs of its
 * provisioning NIC, its firmware's boot mode, root device hints, an
 * optional console log — and a node runs on one of them (DriverNode.machine).
 * Everything here is driver-independent but the BMC, which each driver
 * makes from its own `bmc:` settings. Writing the disk is not the driver's:
 * the deployer network-boots the machine into its deploy ramdisk and tells
 * the ramdisk what to write (deployer/bare-metal/).
 */
const MACHINE_NAME_RE = /^[a-z][a-z0-9-]*$/;

export const MacText = z
  .string()
  .transform((s, ctx) => {
    const mac = normaliseMac(s);
    if (!mac) ctx.addIssue({ code: "custom", message: `${s} is not a MAC address (aa:bb:cc:dd:ee:ff)` });
    return mac ?? s;
  })
  .describe("MAC address of a NIC on the provisioning network (aa:bb:cc:dd:ee:ff)");

export function machineSchema<B extends z.ZodType>(bmc: B) {
  return z.strictObject({
    bmc,
    macs: z.array(MacText).min(1, "list the MAC of its provisioning NIC").describe("MACs of the NICs on the provisioning network: only these get DHCP answers and boot files"),
    boot_mode: BootMode.default("uefi"),
    root_device: RootDeviceHints.optional(),
    console_log: z
      .string()
      .optional()
      .describe("A file the machine's serial console is appended to (conserver, ipmitool sol …), relative to the stack file: the deployer reads the ready line and tails it into errors"),
    console: z.string().regex(/^[\w,.-]+$/, "a console as the kernel names it: ttyS0,115200n8").default("ttyS0,115200n8").describe("The deploy ramdisk's serial console (console=…)"),
    standby: z.boolean().optional().describe("Keep it powered on in the deploy ramdisk while no node uses it (fast track). Default: the entry's standby"),
  });
}

export function bareMetalPool<D extends string, B extends z.ZodType>(driver: D, bmc: B, describe: string) {
  return z
    .strictObject({
      driver: z.literal(driver),
      standby: z.boolean().default(false).describe("Machines wait powered on in the deploy ramdisk while unused (fast track: a deploy then needs no firmware boot)"),
      machines: z
        .record(z.string().regex(MACHINE_NAME_RE, "lowercase letters, digits and '-', starting with a letter").max(40), machineSchema(bmc))
        .refine((m) => Object.keys(m).length > 0, "list at least one machine")
        .describe("The machines, by name; nodes take them in this order unless a role's nodes name one (machine:)"),
    })
    .describe(describe);
}

type Pool = { driver: string; standby: boolean; machines: Record<string, Omit<BareMetalMachine, "standby"> & { standby?: boolean; bmc: Record<string, unknown> }> };

export interface BmcMaker<P extends Pool> {
  name: P["driver"];
  pool: z.ZodType<P>;
  /** Host programs the driver needs, with their Debian packages. */
  programs: [string, string][];
  bmc(machine: string, settings: P["machines"][string]["bmc"]): Bmc;
  /** The BMC settings' file paths, made absolute. */
  resolveBmcPaths(settings: P["machines"][string]["bmc"], abs: (p: string) => string): P["machines"][string]["bmc"];
}

const GRACE_SECONDS = 60;

/** Machines on the provisioning network reach the services at its address and fixed ports (an installed node keeps them). */
export const provisioningServiceUrl: NodeDriver["serviceUrl"] = (service, options = {}) => {
  const p = options.provisioning;
  // Without a provisioning network there is no address: the stack rules refuse such a stack before this is asked.
  if (!p) return `${options.tls ? "https" : "http"}://provisioning-address-unset`;
  return `${options.tls ? "https" : "http"}://${p.address}:${p.ports[service]}`;
};

export function bareMetalDriver<P extends Pool>(maker: BmcMaker<P>): NodeDriver<P> {
  const machineOf = (node: DriverNode) => {
    const pool = maker.pool.parse(node.pool);
    const name = node.machine;
    if (!name || !pool.machines[name]) throw new DriverFailed(node.name, `has no machine of its inventory entry${name ? ` (${name} is not in it any more)` : ""}`);
    return { pool, name, machine: pool.machines[name]! };
  };
  const bmcOf = (node: DriverNode) => {
    const { name, machine } = machineOf(node);
    return maker.bmc(name, machine.bmc);
  };
  const machines = (pool: P) =>
    Object.fromEntries(Object.entries(pool.machines).map(([name, m]) => [name, { ...m, standby: m.standby ?? pool.standby }])) as Record<string, BareMetalMachine>;

  return {
    name: maker.name,
    pool: maker.pool,
    machinesOf: (pool) => ({ machines: pool.machines, open: false }),
    bareMetal: {
      machines,
      bmc: (pool, name) => {
        const m = pool.machines[name];
        if (!m) throw new BmcFailed(name, "is not in the inventory entry");
        return maker.bmc(name, m.bmc);
      },
    },

    resolvePaths(pool, stackDir) {
      const abs = (p: string) => (isAbsolute(p) ? p : resolve(stackDir, p));
      return {
        ...pool,
        machines: Object.fromEntries(
          Object.entries(pool.machines).map(([name, m]) => [
            name,
            { ...m, bmc: maker.resolveBmcPaths(m.bmc, abs), ...(m.console_log ? { console_log: abs(m.console_log) } : {}) },
          ]),
        ),
      };
    },

    /** The host's programs; the BMCs are checked by the deployer for the machines it is about to use (checkMachines). */
    async check() {
      const problems: Problem[] = [];
      for (const [program, pkg] of maker.programs)
        if (!Bun.which(program)) problems.push({ message: `the ${maker.name} driver needs ${program}: apt-get install ${pkg}` });
      return problems;
    },

    serviceUrl: provisioningServiceUrl,

    async provision(node) {
      throw new DriverFailed(node.name, "a bare-metal machine's disk is written by the deploy ramdisk, not by the driver (this is a bug in ooo)");
    },

    async powerState(node) {
      // A node that never got its machine (its BMC refused, none was free) has nothing powered.
      if (!node.machine) return "off";
      return bmcOf(node).powerState();
    },

    async setPower(node, target: PowerTarget, options = {}) {
      const bmc = bmcOf(node);
      switch (target) {
        case "on":
          return bmc.power("on");
        case "off":
          return bmc.power("off");
        case "reset":
          return bmc.power("reset");
        case "soft-off":
          await bmc.power("soft");
          if (!(await waitPower(bmc, "off", (options.timeoutSeconds ?? GRACE_SECONDS) * 1000))) await bmc.power("off");
          return;
        case "reboot":
          await bmc.power("off");
          await waitPower(bmc, "off", 30_000);
          return bmc.power("on");
      }
    },

    consoleLog(node) {
      try {
        return machineOf(node).machine.console_log;
      } catch {
        return undefined;
      }
    },

    /** The machine is the stack's (enrolled): only the node's folder goes. Erasing its disk is the deployer's, through the ramdisk. */
    async destroy(node) {
      rmSync(node.dir, { recursive: true, force: true });
    },

    async describe(node) {
      try {
        const { name, machine } = machineOf(node);
        return { machine: name, bmc: maker.bmc(name, machine.bmc).address, boot_mode: machine.boot_mode, ...(machine.console_log ? { console: machine.console_log } : {}) };
      } catch {
        return {};
      }
    },

    endpoint() {
      return undefined;
    },
  };
}

/**
 * Each machine's BMC, all at once: its credentials file usable and its
 * power state readable. Every problem, by machine; nothing is changed.
 */
export async function checkMachines(driver: NodeDriver, pool: Record<string, unknown>, names?: string[]): Promise<{ machine: string; message: string }[]> {
  const bm = driver.bareMetal!;
  const problems: { machine: string; message: string }[] = [];
  await Promise.all(
    (names ?? Object.keys(bm.machines(pool))).map(async (name) => {
      try {
        await bm.bmc(pool, name).powerState();
      } catch (e) {
        if (e instanceof BmcFailed || e instanceof BmcCredentialsUnusable)
          problems.push({ machine: name, message: `${e.message.replace(`machine ${name}'s BMC: `, "BMC ")}${e.hint ? ` (${e.hint})` : ""}` });
        else throw e;
      }
    }),
  );
  return problems.sort((a, b) => a.machine.localeCompare(b.machine));
}
