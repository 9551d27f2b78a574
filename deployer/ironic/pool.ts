import { z } from "zod";
import { BootMode, RootDeviceHints } from "../../wire/deploy.ts";
import { MacText } from "../drivers/bare-metal.ts";
import { IpmiBmcSettings } from "../drivers/ipmi.ts";
import { RedfishBmcSettings } from "../drivers/redfish.ts";

/**
 * Machines handed to OpenStack Ironic: Ironic powers them, boots ooo's
 * deploy ramdisk as its agent, which writes the golden disk and the
 * config drive (deployer/ironic/). The entry names the Ironic — `embedded`
 * (the stack's own, from Debian's packages; ooo enrolls the machines, which
 * are listed as for the ipmi and redfish drivers) or a site's API URL with
 * an http_basic login — and the machines: Ironic nodes by name or UUID, or
 * a resource_class to claim nodes from. Keystone is not supported.
 */
const NAME_RE = /^[a-z][a-z0-9-]*$/;
const EMBEDDED = "embedded";

export const IronicMachine = z
  .strictObject({
    node: z.string().min(1).optional().describe("A site's Ironic: the node's name or UUID there. (The embedded Ironic names its nodes after the machines.)"),
    bmc: z
      .union([IpmiBmcSettings, RedfishBmcSettings], { error: "must be {address, credentials} (IPMI) or {url, credentials} (Redfish)" })
      .optional()
      .describe("The embedded Ironic: the machine's BMC, as for driver ipmi ({address, credentials}: hardware type ipmi) or redfish ({url, credentials}: redfish)"),
    macs: z.array(MacText).min(1, "list the MAC of its provisioning NIC").optional().describe("The embedded Ironic: MACs of its NICs on the provisioning network (its Ironic ports; dnsmasq answers them)"),
    boot_mode: BootMode.optional().describe("The embedded Ironic: the firmware's mode (default uefi). A site's Ironic knows its nodes' own"),
    root_device: RootDeviceHints.optional(),
    console_log: z
      .string()
      .optional()
      .describe("A file the machine's serial console is appended to (relative to the stack file): the deployer reads the ready line and tails it into errors"),
    console: z
      .string()
      .regex(/^[\w,.-]+$/, "a console as the kernel names it: ttyS0,115200n8")
      .default("ttyS0,115200n8")
      .describe("The embedded Ironic: the deploy ramdisk's serial console (console=…)"),
  })
  .describe("A machine Ironic deploys");
export type IronicMachine = z.infer<typeof IronicMachine>;

export const IronicPool = z
  .strictObject({
    driver: z.literal("ironic"),
    url: z
      .union([z.literal(EMBEDDED), z.url({ protocol: /^https?$/ })], {
        error: (i) => (i.input === undefined ? "is required: embedded, or a site's Ironic API URL" : "must be embedded, or Ironic's API URL (http:// or https://)"),
      })
      .describe("embedded: the stack's own Ironic (ooo starts it on the provisioning address and enrolls the machines); or a site's Ironic API URL (https://ironic.example:6385)"),
    credentials: z
      .string()
      .min(1)
      .optional()
      .describe("A site's Ironic: a file (relative to the stack file, mode 0600) with username: and password: of its http_basic login. Keystone is not supported. Not for url: embedded, whose login ooo makes"),
    ca_file: z.string().optional().describe("A site's https Ironic: a PEM CA file its certificate chains to, when the system's CAs do not"),
    resource_class: z
      .string()
      .regex(/^[\w.-]+$/, "a resource class such as baremetal or CUSTOM_GOLD")
      .optional()
      .describe("A site's Ironic: nodes beyond the named machines are claimed from this resource class (Ironic's allocations), and given back when undeployed"),
    machines: z
      .record(z.string().regex(NAME_RE, "lowercase letters, digits and '-', starting with a letter").max(40), IronicMachine)
      .optional()
      .describe("The machines, by name; nodes take them in this order unless a role's nodes name one (machine:)"),
  })
  .superRefine((p, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
    const machines = Object.entries(p.machines ?? {});
    // A url that is neither has its own problem: what else the entry holds depends on which it was meant to be.
    if (p.url !== EMBEDDED && !/^https?:\/\//.test(p.url)) return;
    if (p.url === EMBEDDED) {
      if (p.credentials !== undefined) issue(["credentials"], "is not for url: embedded (ooo makes the embedded Ironic's login)");
      if (p.ca_file !== undefined) issue(["ca_file"], "is not for url: embedded (it speaks the stack's own TLS)");
      if (p.resource_class !== undefined) issue(["resource_class"], "is not for url: embedded: list its machines (ooo enrolls them)");
      if (!machines.length) issue(["machines"], "list at least one machine (url: embedded enrolls them)");
      for (const [name, m] of machines) {
        if (m.node !== undefined) issue(["machines", name, "node"], "is not for url: embedded (its node is named after the machine)");
        if (!m.bmc) issue(["machines", name, "bmc"], "is required: the embedded Ironic powers the machine through its BMC");
        if (!m.macs) issue(["machines", name, "macs"], "is required: the embedded Ironic boots the machine from the provisioning network");
      }
      return;
    }
    if (p.credentials === undefined) issue(["credentials"], "is required: a file with the Ironic's http_basic username: and password: (Keystone is not supported)");
    if (!machines.length && p.resource_class === undefined) issue(["machines"], "list the machines (Ironic nodes by name or UUID), or give a resource_class to claim them from");
    for (const [name, m] of machines) {
      if (m.node === undefined) issue(["machines", name, "node"], "is required: the machine's node in that Ironic (name or UUID)");
      for (const key of ["bmc", "macs", "boot_mode"] as const)
        if (m[key] !== undefined) issue(["machines", name, key], "is the site's Ironic's to know (its node's driver_info, ports and properties), not the stack's");
    }
  })
  .describe("Machines deployed through OpenStack Ironic, with ooo's deploy ramdisk as its agent: the stack's embedded Ironic, or a site's (http_basic login)");
export type IronicPool = z.infer<typeof IronicPool>;

export const isEmbedded = (pool: IronicPool) => pool.url === EMBEDDED;
