import type { z } from "zod";
import type { Problem } from "../../lib/errors.ts";
import type { BootMode, MapDownload, RootDeviceHints } from "../../wire/deploy.ts";
import type { ConfigDriveMetadata } from "../../wire/metadata.ts";
import type { Bmc } from "../bmc/bmc.ts";

/**
 * A node driver: how the deployer reaches machines. It is small on purpose,
 * at the grain of Ironic's REST API (deployer/drivers/README.md maps each
 * call), so that a bare-metal driver can follow the qemu one:
 *
 *   check       → GET /v1/nodes/{id}/validate          (before anything is touched)
 *   provision   → PATCH instance_info + PUT states/provision {"target":"active","configdrive":…}
 *   power*      → GET /v1/nodes/{id} power_state, PUT states/power
 *   destroy     → PUT states/provision {"target":"deleted"}
 *
 * A driver keeps what it needs about a node in the node's own folder
 * (`DriverNode.dir`) so that any later process (`ooo status`, `ooo delete`,
 * an upgrade) can act on the node without the one that created it.
 */

/** Sizes as the deployer normalised them from the stack file. */
export interface NodeSize {
  memoryMiB: number;
  cpus: number;
  /** Bytes; undefined = the image's own disk size. */
  diskBytes?: number;
}

export interface DriverNode {
  /** The node's name in the stack (role-index by default); unique in the stack. */
  name: string;
  /** A folder in the state folder that belongs to this node and its driver. */
  dir: string;
  /** The stack's state folder (where a driver finds the stack's own daemons: the embedded Ironic). */
  stateDir: string;
  size: NodeSize;
  /** The node's inventory entry (the pool's settings, validated by the driver's schema). */
  pool: Record<string, unknown>;
  /** The machine of the pool the node runs on (a name in the entry's `machines`; ironic: or the Ironic node it claimed). */
  machine?: string;
}

/** A service on the deployer's host that nodes must reach (metadata service, image store). */
export interface HostService {
  name: "metadata" | "store";
  /** The host it listens on, as the deployer's host reaches it (127.0.0.1 for ooo's own daemons). */
  host: string;
  /** A file holding its TCP port. Read at every connection: a service may restart on another port. */
  portFile: string;
  /** It speaks https (nodes reach it as https://, on the https port where the driver forwards). */
  tls?: boolean;
}

/** A whole-disk image where a machine fetches it itself (drivers with `remoteDeploy`: Ironic's agent). */
export interface ImageAtUrl {
  /** The image's content address (manifest digest). */
  digest: string;
  sha256: string;
  /** Apparent size in bytes. */
  size: number;
  /** Where the bytes are fetched: a store blob URL (for remoteDeploy drivers, signed: it needs no token). */
  url: string;
  /** The disk's map (wire/disk-map.ts) where it is fetched, when the build wrote one: an agent that knows it fetches only the disk's data. */
  map?: MapDownload;
}

/** A whole-disk image, downloaded and verified into the deployer's cache. */
export interface DiskImage extends ImageAtUrl {
  /** The raw disk in the local cache (sparse), already checked against `sha256`. */
  path: string;
  /** The image's kernel in the cache, when the manifest has one (the qemu driver probes KVM with it). */
  kernel?: string;
}

export type PowerState = "on" | "off";

/**
 * on: power on (a no-op when on) · off: pull the plug · soft-off: ask the OS
 * to shut down, pull the plug after the timeout · reset: the reset button
 * (stays on) · reboot: off then on.
 */
export type PowerTarget = "on" | "off" | "soft-off" | "reset" | "reboot";

export interface ProvisionRequest {
  /** In the local cache; at a URL only, for remoteDeploy drivers. */
  image: DiskImage | ImageAtUrl;
  /** The node's first metadata; the driver writes it as a config drive in its own format. */
  configDrive: ConfigDriveMetadata;
  /** Services the node must reach once up (from `serviceUrl`). */
  services: HostService[];
  /** Guest TCP ports to make reachable from the host. */
  expose?: number[];
  /** How long the provision may take (remoteDeploy drivers: the machine boots and writes its disk meanwhile). */
  timeoutSeconds?: number;
  /** Record a timeline event of the node (remoteDeploy: its power-on into the deploy ramdisk, the agent's lookup, the write). */
  note?: (kind: string, detail: Record<string, unknown>) => void;
}

/** Where a stack's provisioning network serves its machines (stack file `provisioning:`). */
export interface ProvisioningAddress {
  address: string;
  ports: { metadata: number; store: number; http: number };
}

/** A machine of a bare-metal pool, as its inventory entry describes it. */
export interface BareMetalMachine {
  macs: string[];
  boot_mode: BootMode;
  root_device?: RootDeviceHints;
  console_log?: string;
  /** Kernel console for the deploy ramdisk (console=…). */
  console: string;
  standby: boolean;
}

/**
 * What a driver of real machines adds: machines that a BMC powers and that
 * boot ooo's deploy ramdisk from the provisioning network, which writes
 * their disks (the deployer drives it: deployer/bare-metal/).
 */
export interface BareMetal<Pool> {
  machines(pool: Pool): Record<string, BareMetalMachine>;
  bmc(pool: Pool, machine: string): Bmc;
}

export interface NodeDriver<Pool extends Record<string, unknown> = Record<string, unknown>> {
  /** The name a stack file's inventory uses (`driver: qemu`). */
  readonly name: string;
  /** What an inventory entry of this driver may hold; part of the stack file schema. */
  readonly pool: z.ZodType<Pool>;
  /** Host requirements and pool settings, checked before anything is touched: every problem at once. */
  check(pool: Pool): Promise<Problem[]>;
  /** The URL a node uses to reach a host service (the driver arranges the route; for qemu a guestfwd); https when it speaks TLS. */
  serviceUrl(service: HostService["name"], options?: { tls?: boolean; provisioning?: ProvisioningAddress }): string;
  /** Paths in an inventory entry made absolute (they are relative to the stack file). */
  resolvePaths?(pool: Pool, stackDir: string): Pool;
  /** Machines reached through a BMC and written by the deploy ramdisk (ipmi, redfish); the deployer provisions them, not `provision`. */
  readonly bareMetal?: BareMetal<Pool>;
  /**
   * Machines deployed by a service of their own (Ironic): `provision` has it
   * boot them, fetch the image by URL (no local copy: the request's image is
   * an ImageAtUrl) and write the disk, and leaves them booting their node;
   * they reach the stack's services on the provisioning network.
   */
  readonly remoteDeploy?: boolean;
  /**
   * The entry's machines by name, for drivers whose nodes each take one
   * (bare metal, ironic), with the MACs dnsmasq answers; `open` when more
   * can be claimed than are listed (Ironic's resource_class). The stack's
   * rules check names, MACs and counts by it.
   */
  machinesOf?(pool: Pool): { machines: Record<string, { macs: string[] }>; open: boolean };
  /** Write the image and the config drive onto the node's disk. The node must be powered off; it stays off. */
  provision(node: DriverNode, request: ProvisionRequest): Promise<void>;
  powerState(node: DriverNode): Promise<PowerState>;
  setPower(node: DriverNode, target: PowerTarget, options?: { timeoutSeconds?: number }): Promise<void>;
  /** The file the node's serial console is logged to, if the driver has one (appended across boots). */
  consoleLog(node: DriverNode): string | undefined;
  /** Power off and remove everything the node had (disk, console, sockets). Idempotent. */
  destroy(node: DriverNode): Promise<void>;
  /** Facts for `ooo status` and for tests (pid, sockets …). */
  describe(node: DriverNode): Promise<Record<string, string>>;
  /** Where the host reaches a guest TCP port the role exposes (host:port), if it does. */
  endpoint(node: DriverNode, guestPort: number): string | undefined;
}
