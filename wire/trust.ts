import { z } from "zod";

/**
 * What a node trusts, and where it learns it: from its config drive only —
 * written by the deployer before the node first boots, on a disk the store
 * and the network never touch — under the key NODE_TRUST_KEY of the drive's
 * JSON. The node's config-drive collector keeps a copy in NODE_TRUST_FILE
 * for the node's other agents (the takeover, os-refresh-config's signal).
 */
export const NODE_TRUST_KEY = "ooo_trust";
export const NODE_TRUST_FILE = "/run/ooo/trust.json";

export const NodeTrust = z
  .object({
    keys: z
      .array(z.string())
      .default([])
      .describe("minisign public keys (the text of NAME.pub files): the node takes over only images whose manifest one of them signed; none: unsigned images are allowed"),
    ca: z
      .string()
      .optional()
      .describe("PEM certificate of the stack's CA: the node trusts it (besides the system's) for the metadata service and the image store over https"),
  })
  .describe(`What the node trusts (the config drive's ${NODE_TRUST_KEY})`);
export type NodeTrust = z.infer<typeof NodeTrust>;
