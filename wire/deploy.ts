import { X509Certificate } from "node:crypto";
import { z } from "zod";
import { Digest, Sha256Hex } from "./image-ref.ts";

/**
 * The deploy ramdisk's protocol with the deployer (bare metal). A machine
 * network-booted into ooo's deploy ramdisk knows only its own hardware and
 * what its kernel command line says (RAMDISK_CMDLINE); it finds out which
 * machine it is by its MACs, and then takes commands. Defined once, here:
 * the deployer's metadata service serves it, the ramdisk's agent
 * (`ooo-agent deploy`) speaks it.
 *
 *   POST <base>/v1/ramdisk/lookup                     Lookup → LookupAnswer
 *   POST <base>/v1/ramdisk/<machine>/inventory        Bearer   Inventory → 204
 *   GET  <base>/v1/ramdisk/<machine>/command?wait=S   Bearer   → Command (ETag; If-None-Match waits up to S s)
 *   POST <base>/v1/ramdisk/<machine>/progress         Bearer   RamdiskProgress → 204
 *   POST <base>/v1/ramdisk/<machine>/result           Bearer   RamdiskResult → 204
 *   GET  <base>/v1/ramdisk/<machine>/config-drive     Bearer   → the config drive, a filesystem image
 *
 * The lookup carries no token: a MAC is only a claim, so the service
 * answers it only for a machine the deployer has just armed (powered on for
 * a deploy, or enrolled into standby), once per arming, with a fresh token
 * that opens that machine's URLs and nothing else (as Ironic's agent token:
 * issued once, at the first lookup). A ramdisk that loses its token waits
 * for the deployer to arm the machine again.
 *
 * After the ramdisk has written the disk it starts the installed root (by
 * kexec: no second firmware boot), and from then on the node speaks
 * wire/metadata.ts and wire/signal.ts with the node token from its config
 * drive, as any node does.
 */
export const DEPLOY_VERSION = 1;

/** Kernel command line keys the boot script gives the ramdisk. */
export const RAMDISK_CMDLINE = {
  /** Base URL of the metadata service, as the machine reaches it on the provisioning network. */
  metadataUrl: "ooo.md",
  /** The MAC of the NIC the machine booted from (iPXE's ${mac}, as Ironic's BOOTIF=01-aa-bb-…). */
  bootMac: "BOOTIF",
  /** sha256 of the CA certificate (DER) that the metadata service's TLS chain ends in, when it speaks https. */
  caSha256: "ooo.ca",
  /** Where that certificate is served (plain http, beside the boot files): the ramdisk trusts it once its sha256 is ooo.ca's. */
  caUrl: "ooo.ca_url",
} as const;

/** The CA pin RAMDISK_CMDLINE.caSha256 names: sha256 of the certificate (DER), lowercase hex — `openssl x509 -fingerprint -sha256` without colons. */
export function caFingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replaceAll(":", "").toLowerCase();
}

const Mac = z
  .string()
  .regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, "a MAC address, six lowercase hex pairs separated by ':'")
  .describe("A MAC address (aa:bb:cc:dd:ee:ff)");
export const MacAddress = Mac;

/** Normalise a MAC as people write it (AA-BB-…, aa:bb:…) to the wire's form; undefined when it is none. */
export function normaliseMac(text: string): string | undefined {
  const hex = text.trim().toLowerCase().replace(/^01-(?=([0-9a-f]{2}-){5}[0-9a-f]{2}$)/, "");
  const pairs = hex.split(/[:-]/);
  if (pairs.length !== 6 || !pairs.every((p) => /^[0-9a-f]{2}$/.test(p))) return undefined;
  return pairs.join(":");
}

export const BootMode = z.enum(["uefi", "bios"]).describe("How the machine's firmware boots: UEFI, or legacy BIOS");
export type BootMode = z.infer<typeof BootMode>;

export const LookupV1 = z
  .object({
    version: z.literal(DEPLOY_VERSION),
    macs: z.array(Mac).min(1).describe("Every NIC's MAC, the one it booted from first"),
    boot_mode: BootMode,
    agent: z.string().describe("The ramdisk agent's name and version"),
  })
  .describe("POST body of /v1/ramdisk/lookup");
export type Lookup = z.infer<typeof LookupV1>;

export const LookupAnswerV1 = z
  .object({
    version: z.literal(DEPLOY_VERSION),
    machine: z.string().min(1).describe("The machine's name in the stack's inventory"),
    token: z.string().min(16).describe("Opens this machine's ramdisk URLs; issued once per arming"),
    poll_interval: z.number().positive().describe("Seconds between command polls when the service cannot hold a poll open"),
  })
  .describe("The answer to a lookup");
export type LookupAnswer = z.infer<typeof LookupAnswerV1>;

export const Disk = z
  .object({
    name: z.string().describe("Kernel name, as /dev/NAME (vda, sda, nvme0n1)"),
    size: z.number().int().nonnegative().describe("Bytes"),
    model: z.string().optional(),
    vendor: z.string().optional(),
    serial: z.string().optional(),
    wwn: z.string().optional(),
    by_path: z.string().optional().describe("Its /dev/disk/by-path/ link, e.g. /dev/disk/by-path/pci-0000:00:05.0"),
    rotational: z.boolean().optional(),
    removable: z.boolean().optional(),
  })
  .describe("A disk the ramdisk sees");
export type Disk = z.infer<typeof Disk>;

export const InventoryV1 = z
  .object({
    version: z.literal(DEPLOY_VERSION),
    boot_mode: BootMode,
    cpus: z.object({ count: z.number().int().positive(), model: z.string().optional() }),
    memory_bytes: z.number().int().positive(),
    disks: z.array(Disk),
    nics: z.array(z.object({ name: z.string(), mac: Mac, link: z.boolean().optional() })),
    system: z.object({ vendor: z.string().optional(), product: z.string().optional(), serial: z.string().optional() }).optional(),
  })
  .describe("The machine's hardware, as its ramdisk reports it (ooo status shows it)");
export type Inventory = z.infer<typeof InventoryV1>;

/**
 * Root device hints, as Ironic names them. Strings match exactly (serial,
 * WWN, model and vendor case-insensitively and trimmed: firmware pads
 * them); size is whole GiB, exact or with an operator (">= 100").
 * Without hints the ramdisk takes the smallest disk that holds the image.
 */
export const SIZE_HINT_RE = /^\s*(==|!=|>=|<=|>|<)?\s*(\d+)\s*$/;
export const RootDeviceHints = z
  .strictObject({
    size: z
      .union([z.number().int().positive(), z.string().regex(SIZE_HINT_RE, "whole GiB, optionally after ==, !=, >=, <=, > or <")])
      .optional()
      .describe("Disk size in GiB: 100, or '>= 100'"),
    serial: z.string().min(1).optional(),
    wwn: z.string().min(1).optional(),
    model: z.string().min(1).optional(),
    vendor: z.string().min(1).optional(),
    by_path: z.string().min(1).optional().describe("/dev/disk/by-path/… link of the disk"),
    name: z.string().min(1).optional().describe("/dev/NAME (not stable across boots: prefer by_path or serial)"),
    rotational: z.boolean().optional(),
  })
  .describe("Which disk is the root disk (Ironic's root device hints); without any, the smallest disk that holds the image");
export type RootDeviceHints = z.infer<typeof RootDeviceHints>;

/** A blob the ramdisk downloads: a URL and what its bytes must hash to. */
export const Download = z.object({
  url: z.url(),
  sha256: Sha256Hex,
  size: z.number().int().nonnegative(),
});
export type Download = z.infer<typeof Download>;

/** A golden disk's map, and its pack when the build wrote one (wire/disk-map.ts). */
export const MapDownload = Download.extend({
  pack: Download.optional().describe(
    "The disk pack (the manifest's disk-pack artifact): the chunks' zstd frames are fetched from it, by Range, each checked against the map before it is decompressed, instead of the disk's own bytes",
  ),
});
export type MapDownload = z.infer<typeof MapDownload>;

/**
 * Ironic: the instance_info key where the deployer puts the golden disk's
 * map (a MapDownload, by signed URLs). Ironic hands its agent the node with
 * its instance_info; ooo's agent then fetches only the disk's data, as for
 * its own deploys. Ironic's own agent (IPA) ignores the key and streams the
 * whole disk.
 */
export const IRONIC_DISK_MAP_KEY = "ooo_disk_map";

export const DeployInstructions = z
  .object({
    node: z.string().min(1).describe("The node (stack name) the machine becomes"),
    image: z.object({
      name: z.string().min(1),
      digest: Digest.describe("The image's content address, as the node's metadata names it"),
      disk: Download.describe("The raw golden disk; written only once its sha256 matched"),
      map: MapDownload.optional().describe(
        "The disk's map (wire/disk-map.ts; the manifest's disk-map artifact): when given, only its chunks are fetched, by Range requests on disk.url, each checked against the map, which is checked against this sha256; without it the whole disk streams",
      ),
    }),
    store_token: z.string().optional().describe("A read-only store token for the disk's and the map's URLs (sent as the store's X-Auth-Token)"),
    store_ca: z
      .string()
      .optional()
      .describe("PEM of the CA the store's https certificate chains to, when the system's CAs do not hold it (the stack's own CA for its embedded store)"),
    root_device: RootDeviceHints.optional(),
    config_drive: Download.describe("The config drive image, written into a partition labelled config-2"),
    restart: z.enum(["kexec", "firmware"]).describe("kexec into the installed root, or ask the deployer for a boot from disk"),
  })
  .describe("What to write, where, and how to start it");
export type DeployInstructions = z.infer<typeof DeployInstructions>;

export const CommandV1 = z
  .discriminatedUnion("action", [
    z.object({ version: z.literal(DEPLOY_VERSION), action: z.literal("wait") }).describe("Nothing to do yet (standby): poll again"),
    z.object({ version: z.literal(DEPLOY_VERSION), action: z.literal("deploy"), deploy: DeployInstructions }),
    z
      .object({ version: z.literal(DEPLOY_VERSION), action: z.literal("erase"), then: z.enum(["standby", "poweroff"]) })
      .describe("Erase the partition tables (and signatures) of every disk, then wait or power off"),
    z.object({ version: z.literal(DEPLOY_VERSION), action: z.literal("poweroff") }),
  ])
  .describe("What the deployer wants of the ramdisk now");
export type Command = z.infer<typeof CommandV1>;

export const RamdiskPhase = z.enum([
  "lookup",
  "inventory",
  "waiting",
  "selecting-disk",
  "writing",
  "verifying",
  "config-drive",
  "growing-state",
  "restarting",
  "erasing",
  "failed",
]);
export type RamdiskPhase = z.infer<typeof RamdiskPhase>;

export const RamdiskProgressV1 = z
  .object({
    version: z.literal(DEPLOY_VERSION),
    phase: RamdiskPhase,
    bytes_done: z.number().int().nonnegative().optional(),
    bytes_total: z.number().int().nonnegative().optional(),
    message: z.string().max(4096).optional(),
    at: z.number().describe("Seconds since the ramdisk's agent started"),
  })
  .describe("POST body of /v1/ramdisk/<machine>/progress: best effort, for the timeline");
export type RamdiskProgress = z.infer<typeof RamdiskProgressV1>;

/** Upper bound of a result's log tail, so that a result stays small. */
export const RESULT_LOG_LIMIT = 64 * 1024;

export const RamdiskResultV1 = z
  .object({
    version: z.literal(DEPLOY_VERSION),
    action: z.enum(["deploy", "erase"]),
    status: z.enum(["success", "failure"]),
    step: RamdiskPhase.describe("The step it ended in (on failure: the one that failed)"),
    message: z.string().max(8192),
    disk: z.string().optional().describe("The disk it chose (/dev/NAME)"),
    restart: z
      .enum(["kexec", "firmware", "none"])
      .describe("kexec: it is starting the installed root now; firmware: it could not, the deployer boots the machine from disk"),
    log_tail: z.string().max(RESULT_LOG_LIMIT).optional().describe("The end of the ramdisk's log"),
  })
  .describe("POST body of /v1/ramdisk/<machine>/result: sent once per command, before a kexec");
export type RamdiskResult = z.infer<typeof RamdiskResultV1>;

export const Lookup = LookupV1;
export const LookupAnswer = LookupAnswerV1;
export const Inventory = InventoryV1;
export const Command = CommandV1;
export const RamdiskProgress = RamdiskProgressV1;
export const RamdiskResult = RamdiskResultV1;

export function ramdiskUrl(base: string, machine: string, what: "inventory" | "command" | "progress" | "result" | "config-drive"): string {
  return `${base.replace(/\/+$/, "")}/v1/ramdisk/${encodeURIComponent(machine)}/${what}`;
}

export function lookupUrl(base: string): string {
  return `${base.replace(/\/+$/, "")}/v1/ramdisk/lookup`;
}
