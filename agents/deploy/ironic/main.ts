import { networkInterfaces } from "node:os";
import { log } from "../../../lib/log.ts";
import { chooseRootDisk } from "../../../wire/root-device.ts";
import { DeployStepFailed } from "../../errors.ts";
import { disks, nics } from "../inventory.ts";
import { pinnedCa } from "../pinned-ca.ts";
import { powerOff, syncAll } from "../syscalls.ts";
import { runIronicAgent } from "./agent.ts";
import { parseIronicCmdline } from "./cmdline.ts";

/**
 * The deploy ramdisk booted by Ironic (its iPXE script gave `ipa-api-url=`):
 * the agent of agent.ts on the machine's real disks, its callback URL on the
 * address of the NIC it booted from (or `ipa-advertise-host=`), port 9999
 * (or `ipa-listen-port=`), Ironic and the image URLs verified against the
 * stack's CA when the command line pins one.
 */
const ADDRESS_WAIT_MS = 60_000;

/** The IPv4 address of the NIC with `mac` (any NIC's, without one), once DHCP gave it one. */
async function addressOf(mac: string | undefined): Promise<string> {
  for (const deadline = Date.now() + ADDRESS_WAIT_MS; ; await Bun.sleep(1_000)) {
    const all = Object.values(networkInterfaces()).flatMap((list) => list ?? []).filter((a) => a.family === "IPv4" && !a.internal);
    const found = all.find((a) => !mac || a.mac.toLowerCase() === mac) ?? (mac ? undefined : all[0]);
    if (found) return found.address;
    if (Date.now() > deadline) throw new DeployStepFailed("lookup", `no IPv4 address on ${mac ?? "any NIC"} after ${ADDRESS_WAIT_MS / 1000} s: Ironic could not call this agent back`);
  }
}

export async function ironicAgentMain(cmdline: string, logFile: string | undefined): Promise<void> {
  const args = parseIronicCmdline(cmdline);
  const ca = args.caSha256 ? await pinnedCa(args.caUrl!, args.caSha256) : undefined;
  const found = nics().map((n) => n.mac);
  const macs = args.bootMac ? [args.bootMac, ...found.filter((m) => m !== args.bootMac)] : found;
  if (!macs.length) throw new DeployStepFailed("lookup", "this machine has no NIC the kernel knows: nothing to look it up by");
  const host = args.advertiseHost ?? (await addressOf(args.bootMac));
  log.info(`Ironic's agent: ${args.apiUrl}, looked up by ${macs.join(", ")}, called back at http://${host}:${args.listenPort}`);
  await runIronicAgent({
    apiUrl: args.apiUrl,
    ...(ca ? { apiCa: ca } : {}),
    macs,
    listen: { hostname: "0.0.0.0", port: args.listenPort },
    advertise: (port) => `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    machine: {
      rootDevice: (bytes, hints) => {
        const choice = chooseRootDisk(disks(), bytes, hints);
        if ("problem" in choice) throw new Error(choice.problem);
        return `/dev/${choice.disk.name}`;
      },
      sync: syncAll,
      powerOff: () => {
        const why = powerOff();
        throw new Error(`power off failed: ${why}`);
      },
      logFiles: logFile ? [logFile] : [],
      ...(ca ? { ca } : {}),
    },
  });
}
