import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { Problem } from "../../lib/errors.ts";
import { readBmcLogin } from "../bmc/credentials.ts";
import { BmcCredentialsUnusable } from "../errors.ts";
import { connectIronic, ironicIdent } from "../ironic/connect.ts";
import { describeIronicNode, ironicConsoleLog, ironicPower, ironicPowerState, provisionByIronic, undeployByIronic } from "../ironic/node-ops.ts";
import { IronicPool, isEmbedded } from "../ironic/pool.ts";
import { provisioningServiceUrl } from "./bare-metal.ts";
import type { NodeDriver } from "./driver.ts";

export { IronicPool } from "../ironic/pool.ts";

/**
 * `driver: ironic`: machines deployed through OpenStack Ironic (the
 * stack's embedded one or a site's), with ooo's deploy ramdisk as its
 * agent. The entry's schema is ironic/pool.ts; the calls are ironic/.
 * Ironic boots the machine, its agent fetches the golden disk by a signed
 * store URL and writes it with the node's config drive, and Ironic boots
 * the machine from its disk: `provision` leaves the node booting.
 */
export const ironicDriver: NodeDriver<IronicPool> = {
  name: "ironic",
  pool: IronicPool,
  remoteDeploy: true,

  machinesOf: (pool) => ({
    machines: Object.fromEntries(Object.entries(pool.machines ?? {}).map(([name, m]) => [name, { macs: m.macs ?? [] }])),
    open: pool.resource_class !== undefined,
  }),

  resolvePaths(pool, stackDir) {
    const abs = (p: string) => (isAbsolute(p) ? p : resolve(stackDir, p));
    return {
      ...pool,
      ...(pool.credentials ? { credentials: abs(pool.credentials) } : {}),
      ...(pool.ca_file ? { ca_file: abs(pool.ca_file) } : {}),
      ...(pool.machines
        ? {
            machines: Object.fromEntries(
              Object.entries(pool.machines).map(([name, m]) => [
                name,
                {
                  ...m,
                  ...(m.bmc ? { bmc: { ...m.bmc, credentials: abs(m.bmc.credentials), ...("ca_file" in m.bmc && m.bmc.ca_file ? { ca_file: abs(m.bmc.ca_file) } : {}) } } : {}),
                  ...(m.console_log ? { console_log: abs(m.console_log) } : {}),
                },
              ]),
            ),
          }
        : {}),
    };
  },

  /** The host's programs and the login files; the Ironic and its nodes are checked when a deploy prepares them (ironic/prepare.ts). */
  async check(pool) {
    const problems: Problem[] = [];
    if (isEmbedded(pool)) {
      const programs: [string, string][] = [["ironic", "ironic-common"], ["ironic-dbsync", "ironic-common"], ["ipmitool", "ipmitool"]];
      for (const [program, pkg] of programs)
        if (!Bun.which(program)) problems.push({ message: `the embedded Ironic needs ${program}: apt-get install ${pkg}` });
      return problems;
    }
    try {
      readBmcLogin(pool.credentials!, "Ironic");
    } catch (e) {
      if (!(e instanceof BmcCredentialsUnusable)) throw e;
      problems.push({ message: e.message });
    }
    if (pool.ca_file && !existsSync(pool.ca_file)) problems.push({ message: `ca_file ${pool.ca_file}: no such file` });
    return problems;
  },

  serviceUrl: provisioningServiceUrl,

  provision: (node, request) => provisionByIronic(connectIronic(node), node, request),

  async powerState(node) {
    // A node that never got its machine (refused before anything was touched) has nothing powered.
    if (!node.machine) return "off";
    return ironicPowerState(connectIronic(node), ironicIdent(node));
  },

  setPower: (node, target, options) => ironicPower(connectIronic(node), ironicIdent(node), target, options),

  consoleLog: ironicConsoleLog,

  destroy: (node) => undeployByIronic(node),

  describe: (node) => describeIronicNode(node),

  endpoint() {
    return undefined;
  },
};
