import { z } from "zod";
import { Digest } from "./image-ref.ts";
import { NODE_TRUST_KEY, NodeTrust } from "./trust.ts";

/**
 * Node metadata: what the deployer's metadata service hands each node, and
 * what the node's os-collect-config (collector `heat`) fetches, caches and
 * feeds to os-apply-config's templates. Defined once, here; the deployer
 * serves it and the agents read it.
 *
 *   GET <base>/v1/nodes/<node>/metadata
 *   Authorization: Bearer <the node's own token>
 *   → 200 application/json: NodeMetadata
 *
 * The body is Heat-shaped on purpose: free-form configuration keys at the
 * top level (templates read them as `{{key}}`), an optional `deployments`
 * list as Heat's SoftwareDeployments put in server metadata (each
 * os-apply-config-group item becomes its own config file on the node), and
 * one `ooo` block that belongs to ooo itself. Keys are snake_case, as in
 * Heat's metadata, because templates name them.
 *
 * The service should send an `ETag`; the collector asks with `If-None-Match`
 * and takes 304 Not Modified as "unchanged".
 */
export const METADATA_VERSION = 1;

export const NodeImage = z
  .object({
    name: z.string().min(1).describe("Image name in the image store"),
    digest: Digest.describe("Content address of the image (wire/manifest.ts digest); the node upgrades when it differs from its own"),
    attempt: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe("Raised to try again an image this node rolled back from; the node never retries the same attempt"),
  })
  .describe("The image this node should run");

export const StoreAccess = z
  .object({
    url: z.url().describe("The image store's Glance API, as the node reaches it"),
    token: z.string().optional().describe("A read-only token"),
    server_name: z
      .string()
      .optional()
      .describe("The name the store's certificate carries, when `url` reaches it by another address (the driver's forward): verify it against this"),
  })
  .describe("Where the node fetches images from when it upgrades in place");

export const OooBlock = z
  .object({
    version: z.literal(METADATA_VERSION).describe("Version of this metadata format"),
    node: z.string().min(1).describe("The node's name, as in the stack file"),
    role: z.string().min(1).describe("The role (group of identical nodes) it belongs to"),
    serial: z
      .number()
      .int()
      .nonnegative()
      .describe("Raised by the deployer on every change of this node's metadata; echoed as metadata_serial in the completion signal"),
    image: NodeImage,
    signal_url: z.url().describe("Where os-refresh-config POSTs the completion signal (wire/signal.ts)"),
    store: StoreAccess.optional(),
    trial_timeout: z
      .number()
      .positive()
      .optional()
      .describe("Seconds a root booted on trial has to be configured before the node falls back (default 300)"),
  })
  .describe("ooo's own block; everything else at the top level is configuration for templates");

export const DeploymentInput = z.looseObject({
  name: z.string(),
  type: z.enum(["String", "Number", "CommaDelimitedList", "Json", "Boolean"]).optional(),
  value: z.unknown().optional(),
  description: z.string().optional(),
  default: z.unknown().optional(),
  replace_on_change: z.boolean().optional(),
});

export const Deployment = z
  .looseObject({
    id: z.string().describe("Derived config id; new for every action"),
    name: z.string().describe("Deployment name; os-apply-config-group items are cached as NAME.json"),
    group: z.string().default("Heat::Ungrouped").describe("Tool that applies it: os-apply-config, script, …"),
    config: z
      .union([z.string(), z.record(z.string(), z.unknown())])
      .describe("A script (string) or structured configuration (object, for os-apply-config)"),
    inputs: z.array(DeploymentInput).default([]),
    outputs: z.array(z.looseObject({ name: z.string(), error_output: z.boolean().optional() })).default([]),
    options: z.record(z.string(), z.unknown()).optional(),
    creation_time: z.string().optional(),
  })
  .describe("One software deployment, in Heat's server-metadata shape");

export const CollectorSettings = z
  .looseObject({
    command: z.string().optional().describe("Run on every change (default os-refresh-config)"),
    polling_interval: z.number().positive().optional().describe("Longest pause between polls, seconds (default 30)"),
    min_polling_interval: z.number().positive().optional().describe("First pause, doubled each poll (default 1)"),
    splay: z.number().nonnegative().optional(),
    collectors: z
      .array(z.string())
      .optional()
      .describe("Sources in precedence order, later wins (default config-drive heat local)"),
    heat: z
      .object({
        metadata_url: z.url().describe("Base URL of the metadata service, as the node reaches it"),
        node: z.string().min(1),
        token: z.string().optional().describe("The node's bearer token (the rendered config file is mode 0600)"),
        token_file: z.string().optional().describe("Or a file on the node holding it"),
        timeout: z.number().positive().optional(),
      })
      .optional()
      .describe("ooo's metadata service (the node's collector `heat`)"),
    request: z.object({ metadata_url: z.url() }).optional(),
    "config-drive": z.object({ label: z.string().optional(), path: z.string().optional() }).optional(),
  })
  .describe("Renders /etc/os-collect-config.conf on the node (element os-collect-config): how it polls");

export const NodeMetadataV1 = z
  .looseObject({
    ooo: OooBlock,
    deployments: z.array(Deployment).optional().describe("Heat-style software deployments"),
    "os-collect-config": CollectorSettings.optional(),
  })
  .describe("What GET /v1/nodes/<node>/metadata returns: configuration keys plus the ooo block");

/**
 * A new node's first metadata, before it knows where its metadata service
 * is: JSON at CONFIG_DRIVE_PATH on a filesystem labelled CONFIG_DRIVE_LABEL
 * (vfat, iso9660 or ext2/3/4), read by the collector `config-drive`. Its
 * os-collect-config block points the node at the metadata service; it may
 * carry the full node metadata too (then the first run can already signal).
 */
export const CONFIG_DRIVE_LABEL = "config-2";
export const CONFIG_DRIVE_PATH = "ooo/metadata.json";

export const ConfigDriveMetadataV1 = z
  .looseObject({
    "os-collect-config": CollectorSettings,
    ooo: OooBlock.optional(),
    [NODE_TRUST_KEY]: NodeTrust.optional(),
  })
  .describe(`What ${CONFIG_DRIVE_PATH} on the ${CONFIG_DRIVE_LABEL} drive holds`);
export const ConfigDriveMetadata = ConfigDriveMetadataV1;
export type ConfigDriveMetadata = z.infer<typeof ConfigDriveMetadataV1>;

export type NodeMetadata = z.infer<typeof NodeMetadataV1>;

/** Parse any known version (one so far). */
export const NodeMetadata = NodeMetadataV1;

/** The metadata URL of one node under the service's base URL. */
export function metadataUrl(base: string, node: string): string {
  return `${base.replace(/\/+$/, "")}/v1/nodes/${encodeURIComponent(node)}/metadata`;
}

/** The completion signal URL of one node (what the ooo block's signal_url usually holds). */
export function signalUrl(base: string, node: string): string {
  return `${base.replace(/\/+$/, "")}/v1/nodes/${encodeURIComponent(node)}/signal`;
}

/** How a node authenticates to the metadata service, for both GET metadata and POST signal. */
export function authorization(token: string): string {
  return `Bearer ${token}`;
}
