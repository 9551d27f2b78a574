import { caFingerprint, RAMDISK_CMDLINE } from "../../wire/deploy.ts";
import { readBmcLogin } from "../bmc/credentials.ts";
import { parseIpmiAddress } from "../bmc/ipmi.ts";
import { BmcCredentialsUnusable, IronicFailed, IronicNodeFailed } from "../errors.ts";
import type { RamdiskFiles } from "../provisioning/boot-routes.ts";
import type { StackProvisioning } from "../stack.ts";
import type { IronicClient, IronicNode } from "./client.ts";
import type { IronicMachine } from "./pool.ts";
import { waitForProvisionState } from "./wait.ts";

/**
 * The machines of `url: embedded` entries, enrolled into the stack's own
 * Ironic as the inventory describes them: a node named after the machine
 * (hardware type ipmi or redfish, by its BMC; ipxe boot, direct deploy),
 * a port per MAC, ooo's deploy ramdisk from the boot files' server (by
 * content: Ironic caches it by URL), the machine's console and the stack's
 * CA pin on its kernel command line, its boot mode; then verified (Ironic
 * reads its power state through the BMC) and made available. Nothing
 * powers a machine. A node Ironic has deployed or is moving keeps its
 * settings; the others get the inventory's again each time (a fixed
 * password reaches Ironic so). A BMC Ironic cannot verify is a problem of
 * its machine, with Ironic's reason.
 */
export interface BootSettings {
  provisioning: StackProvisioning;
  ramdisk: RamdiskFiles;
  /** The stack's CA (PEM) when its services speak https: the ramdisk pins it. */
  caPem?: string;
}

const VERIFY_TIMEOUT_MS = 3 * 60_000;

/** What Ironic's node holds for the machine (driver_info carries the BMC's password: it goes to Ironic only). */
export function nodeFields(machine: IronicMachine, boot: BootSettings) {
  const base = `http://${boot.provisioning.address}:${boot.provisioning.ports.http}`;
  const ramdisk = (f: { sha256: string }, name: string) => `${base}/boot/ramdisk/${f.sha256}/${name}`;
  const append = [
    // Ironic's own [pxe] kernel_append_params, then what ooo's ramdisk needs: its console, and the CA it trusts.
    "%default%",
    "console=tty0",
    `console=${machine.console}`,
    ...(boot.caPem ? [`${RAMDISK_CMDLINE.caSha256}=${caFingerprint(boot.caPem)}`, `${RAMDISK_CMDLINE.caUrl}=${base}/boot/ca.pem`] : []),
  ].join(" ");
  const bmc = machine.bmc!;
  const login = readBmcLogin(bmc.credentials);
  const common = { deploy_kernel: ramdisk(boot.ramdisk.kernel, "vmlinuz"), deploy_ramdisk: ramdisk(boot.ramdisk.initramfs, "initramfs"), kernel_append_params: append };
  const ipmi = "address" in bmc ? parseIpmiAddress(bmc.address)! : undefined;
  const driver =
    "address" in bmc
      ? {
          driver: "ipmi",
          // Cipher suite 3 as ooo's own ipmitool: without it every call first spends ~10 s listing suites.
          driver_info: { ...common, ipmi_address: ipmi!.host, ipmi_port: ipmi!.port, ipmi_username: login.username, ipmi_password: login.password, ipmi_cipher_suite: 3 },
        }
      : {
          driver: "redfish",
          driver_info: {
            ...common,
            redfish_address: new URL(bmc.url).origin,
            redfish_system_id: new URL(bmc.url).pathname.replace(/\/+$/, ""),
            redfish_username: login.username,
            redfish_password: login.password,
            redfish_verify_ca: bmc.ca_file ?? true,
          },
        };
  return {
    ...driver,
    boot_interface: "ipxe",
    deploy_interface: "direct",
    network_interface: "noop",
    properties: { capabilities: `boot_mode:${machine.boot_mode ?? "uefi"}` },
  };
}

const SETTLED = new Set(["enroll", "manageable", "available"]);

async function ensureNode(client: IronicClient, name: string, machine: IronicMachine, boot: BootSettings): Promise<IronicNode> {
  const fields = nodeFields(machine, boot);
  let node: IronicNode | undefined;
  try {
    node = await client.getNode(name);
  } catch (e) {
    if (!(e instanceof IronicFailed && e.status === 404)) throw e;
  }
  if (!node) node = await client.createNode({ name, ...fields });
  else if (SETTLED.has(node.provision_state) && !node.target_provision_state)
    node = await client.patchNode(node.uuid, [
      ...Object.entries(fields)
        .filter(([k]) => k !== "driver_info" && k !== "properties")
        .map(([k, value]) => ({ op: "replace" as const, path: `/${k}`, value })),
      ...Object.entries(fields.driver_info).map(([k, value]) => ({ op: "add" as const, path: `/driver_info/${k}`, value })),
      { op: "add" as const, path: "/properties/capabilities", value: fields.properties.capabilities },
    ]);
  const known = new Set((await client.ports(node.uuid)).map((p) => p.address));
  for (const mac of machine.macs ?? []) if (!known.has(mac)) await client.createPort(node.uuid, mac);
  return node;
}

/** Verified and available (a node Ironic could not verify before is tried again: its BMC or password may be fixed). */
async function makeAvailable(client: IronicClient, node: IronicNode): Promise<void> {
  const wait = { timeoutMs: VERIFY_TIMEOUT_MS, intervalMs: 500 };
  if (node.provision_state === "enroll") {
    await client.setProvisionState(node.uuid, "manage");
    await waitForProvisionState(client, node.uuid, "manageable", wait);
  }
  if ((await client.getNode(node.uuid)).provision_state === "manageable") {
    await client.setProvisionState(node.uuid, "provide");
    await waitForProvisionState(client, node.uuid, "available", wait);
  }
}

/** Every machine enrolled, at once; the problems by machine (Ironic's reason why it could not verify one). */
export async function enrollMachines(client: IronicClient, machines: Record<string, IronicMachine>, boot: BootSettings): Promise<{ machine: string; message: string }[]> {
  const problems: { machine: string; message: string }[] = [];
  await Promise.all(
    Object.entries(machines).map(async ([name, machine]) => {
      try {
        await makeAvailable(client, await ensureNode(client, name, machine, boot));
      } catch (e) {
        if (e instanceof IronicNodeFailed) problems.push({ machine: name, message: `the embedded Ironic could not verify its BMC: ${e.lastError ?? `it is "${e.state}"`}` });
        else if (e instanceof IronicFailed || e instanceof BmcCredentialsUnusable) problems.push({ machine: name, message: e.message });
        else throw e;
      }
    }),
  );
  return problems.sort((a, b) => a.machine.localeCompare(b.machine));
}
