import { z } from "zod";
import { ImageRefText } from "../wire/image-ref.ts";
import { InventoryEntry } from "./drivers/index.ts";
import { DURATION_RE, SIZE_RE } from "./units.ts";

/**
 * The stack file: what the cluster is, as data (the deployer's Heat
 * template). One zod schema, documented inside; the JSON Schema generated
 * from it is snapshot-tested (stack.test.ts) so docs and validation cannot
 * drift. Keys are snake_case, as Heat's. `version` is there from day one: a
 * new version gets a translate-forward step in stack.ts.
 */
export const STACK_VERSION = 1;

const required = (what: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? `is required: ${what}` : `must be ${what}`;

export const LABEL_RE = /^[a-z][a-z0-9-]*$/;

const Label = (what: string) =>
  z
    .string({ error: required(what) })
    .regex(LABEL_RE, "must be lowercase letters, digits and '-', starting with a letter")
    .max(40, "must be at most 40 characters");

const SizeText = z.string().regex(SIZE_RE, "must be a size such as 768M, 2G or 8GiB");

export const Size = z
  .strictObject({
    memory: z
      .union([z.number().positive(), SizeText], { error: "must be MiB as a number, or a size such as 768M or 2G" })
      .optional()
      .describe("RAM: MiB as a number, or with a unit (768M, 2G); at least 256 MiB. Default 1024"),
    cpus: z.int("must be a whole number").min(1, "must be ≥ 1").max(64, "must be ≤ 64").optional().describe("Virtual CPUs. Default 1"),
    disk: z
      .union([z.number().positive(), SizeText], { error: "must be GiB as a number, or a size such as 4G" })
      .optional()
      .describe("Disk: GiB as a number, or with a unit. Default: the image's own disk; a bigger disk grows the state partition"),
  })
  .describe("A node's size (its flavor)");

const Duration = z.union([z.number().nonnegative(), z.string().regex(DURATION_RE, "must be a duration such as 30s, 2m or 1h")], {
  error: "must be seconds as a number, or a duration such as 30s, 2m or 1h",
});

export const Metadata = z
  .record(z.string(), z.unknown(), { error: "must be a mapping of keys to values" })
  .describe("Configuration keys os-apply-config renders on the node ({{key.sub}} in templates); `deployments` as Heat's");

export const RollingUpdates = z
  .strictObject({
    max_batch_size: z.int("must be a whole number").min(1, "must be ≥ 1").default(1).describe("Nodes updated at once"),
    min_in_service: z
      .int("must be a whole number")
      .min(0, "must be ≥ 0")
      .default(0)
      .describe("Nodes of the role that stay in service (signalled, on their old or new image) while a batch updates"),
    pause: Duration.default(0).describe("Wait between batches (seconds, or 30s, 2m …)"),
    policy: z
      .enum(["rebuild-in-place", "replace"])
      .default("rebuild-in-place")
      .describe(
        "How an image change reaches a node: rebuild-in-place (the node takes over the new root itself; its state stays) or replace (a fresh node from the new image, the old one deleted)",
      ),
  })
  .describe("How `ooo upgrade` moves this role to a new image (Heat's rolling_updates)");

export const NodeOverride = z
  .strictObject({
    metadata: Metadata.optional().describe("Merged over the role's metadata (mappings merge key by key; other values replace)"),
    size: Size.optional().describe("Replaces the role's size, field by field"),
    machine: z
      .string()
      .regex(LABEL_RE, "a machine's name in the role's inventory entry")
      .optional()
      .describe("Bare metal: the machine this node runs on (a name in its inventory entry's machines). Default: the first free one, in the entry's order"),
  })
  .describe("Settings of one node of the role");

export const Role = z
  .strictObject({
    count: z
      .int({ error: (i) => (i.input === undefined ? "is required: how many nodes the role has" : "must be a whole number") })
      .min(0, "must be ≥ 0")
      .max(1000, "must be ≤ 1000 (the most one role may have)")
      .describe("How many nodes the role has (at most 1000)"),
    image: ImageRefText,
    inventory: Label("the name of an inventory entry").optional().describe("Where its nodes come from (an inventory entry); optional when there is one"),
    size: Size.optional(),
    metadata: Metadata.optional(),
    nodes: z
      .record(z.string(), NodeOverride)
      .optional()
      .describe("Per-node settings, by node name (e.g. web-1)"),
    name_format: z
      .string()
      .optional()
      .describe("Node names: {role} and {index} (0, 1, …) are replaced. Default {role}-{index}"),
    rolling_updates: RollingUpdates.optional(),
    expose: z
      .array(z.int("must be a whole number").min(1, "must be a TCP port").max(65535, "must be a TCP port"))
      .optional()
      .describe("TCP ports of the role's service, reachable from the host (qemu: each forwarded to a free port on 127.0.0.1; `ooo status` shows where)"),
  })
  .describe("A group of identical nodes");

export const StoreSettings = z
  .strictObject({
    embedded: z
      .boolean()
      .optional()
      .describe("Run an image store in the state folder (127.0.0.1, tokens generated); `ooo store-env STACK` says how to publish to it"),
    url: z.url("must be a URL such as http://127.0.0.1:9292").optional().describe("An image store to use (ooo store serve, or a Glance)"),
    ca_file: z
      .string()
      .optional()
      .describe("For an https url whose certificate is not from a CA the system trusts: a PEM file of that CA (relative to the stack file); the deployer and the nodes trust it for the store"),
    token_file: z
      .string()
      .optional()
      .describe("A file (relative to the stack file) whose first line is a read token of that store; else OOO_STORE_TOKEN. Nodes get it: a write token is refused"),
  })
  .describe("Where images come from: `embedded: true` (the default), or `url` (+ `token_file`)");

export const TrustSettings = z
  .strictObject({
    keys: z
      .array(z.string(), { error: "must be a list of files" })
      .min(1, "must name at least one key (leave keys out to allow unsigned images)")
      .optional()
      .describe(
        "minisign public keys (NAME.pub from `ooo key generate`, relative to the stack file). The deployer deploys and upgrades to, and nodes take over, only images whose manifest one of them signed (`ooo publish --sign`); nodes get the keys on their config drive. Without keys, unsigned images are deployed (and `ooo status` says so)",
      ),
    plain_http: z
      .boolean()
      .optional()
      .describe(
        "Allow plain http where a network is crossed: a store url of http:// on another host, and the embedded services without TLS. By default the stack's services speak https with a CA of its own (made on the first deploy, kept in the state folder, given to the nodes on their config drive)",
      ),
  })
  .describe("What the stack trusts: image signing keys, and whether plain http may cross a network");

const Port = z.int("must be a TCP port").min(1, "must be a TCP port").max(65535, "must be a TCP port");
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const Ipv4 = z.string().regex(IPV4_RE, "an IPv4 address such as 10.77.0.1");

export const Provisioning = z
  .strictObject({
    address: Ipv4.describe("The deployer's address on the provisioning network: its services listen here (and on 127.0.0.1), machines reach them here"),
    interface: z
      .string()
      .regex(/^[\w.:@-]{1,15}$/, "a network interface name such as eno2 or br0")
      .describe("The interface of that network: dnsmasq answers DHCP and TFTP there only"),
    dhcp: z
      .union(
        [
          z.strictObject({
            range: z
              .string()
              .regex(new RegExp(`^${IPV4_RE.source.slice(1, -1)}-${IPV4_RE.source.slice(1, -1)}$`), "FIRST-LAST, e.g. 10.77.0.100-10.77.0.199")
              .describe("Addresses handed out, to the inventory's MACs only: FIRST-LAST"),
          }),
          z.strictObject({ proxy: z.literal(true).describe("Another DHCP server gives the addresses; dnsmasq only adds the boot information (proxy DHCP)") }),
        ],
        { error: "must be {range: FIRST-LAST} or {proxy: true}" },
      )
      .describe("How machines get addresses: a range dnsmasq hands out, or proxy DHCP beside the site's DHCP server"),
    ramdisk: ImageRefText.describe("The deploy ramdisk: an image in the store built with -t ramdisk,tar from element ooo-deploy (e.g. ooo-deploy@stable)"),
    ports: z
      .strictObject({
        metadata: Port.default(6385).describe("The metadata service (https): installed nodes keep this URL, so it is fixed"),
        store: Port.default(9292).describe("The embedded image store (https)"),
        http: Port.default(8080).describe("Boot files over plain http: iPXE scripts, the ramdisk's kernel and initramfs, the stack's CA certificate"),
        ironic: Port.default(6386).describe("The embedded Ironic's API (https once the stack has a CA), for inventory entries with driver: ironic and url: embedded; its deploy ramdisks call it here"),
      })
      .optional()
      .describe("Fixed ports on the provisioning address (installed nodes keep the URLs)"),
  })
  .describe("The network bare-metal machines boot from: ooo runs dnsmasq (DHCP, TFTP) there and serves the boot files, metadata and store on its address. Needed when the inventory has ipmi, redfish or ironic machines");

export const Settings = z
  .strictObject({
    signal_timeout: Duration.optional().describe("How long a node has from power-on (or a metadata change) to its completion signal. Default 10m"),
    polling_interval: Duration.optional().describe("Longest pause between the node agents' metadata polls. Default 5s"),
  })
  .describe("How the deploy runs");

export const StackFileV1 = z
  .strictObject({
    version: z
      .literal(STACK_VERSION, { error: (i) => (i.input === undefined ? "is required: version: 1" : "must be 1 (the only stack file version)") })
      .describe("Stack file format version"),
    name: Label("a stack name").optional().describe("The stack's name. Default: the file's name without .yaml"),
    description: z.string().optional(),
    store: StoreSettings.optional(),
    trust: TrustSettings.optional(),
    settings: Settings.optional(),
    defaults: z.strictObject({ size: Size.optional() }).optional().describe("Defaults for every role"),
    inventory: z
      .record(Label("an inventory entry name"), InventoryEntry)
      .optional()
      .describe("Machines the stack may use, by name, each with its driver. Default: { local: { driver: qemu } }"),
    provisioning: Provisioning.optional(),
    roles: z.record(Label("a role name"), Role, { error: required("a mapping of role names to roles") }).describe("The roles, by name"),
  })
  .describe("An ooo stack file (ooo deploy STACK)");

export type StackFileV1 = z.infer<typeof StackFileV1>;
export type SizeV1 = z.infer<typeof Size>;
