import { createHash } from "node:crypto";
import { ConfigDriveMetadata, METADATA_VERSION, NodeMetadata, signalUrl } from "../wire/metadata.ts";
import { NODE_TRUST_KEY, type NodeTrust } from "../wire/trust.ts";
import { formatPublicKey } from "../lib/minisign.ts";
import type { NodeSpec, Stack } from "./stack.ts";

/**
 * What a node is told, in the wire formats the agents read.
 *
 * The config drive carries only the bootstrap: where the metadata service
 * is, the node's name and its token (as Nova's config drive carries Heat's
 * os-collect-config settings), and what the node trusts (wire/trust.ts: the
 * stack's image keys, its CA), which must not come over the network. Everything else comes from the metadata
 * service, so that it can change: os-collect-config merges its sources key
 * by key, and a key that lived on the (read-only, never rewritten) drive
 * could not be taken away later. The token lives only on the drive and on
 * the node, never in the served document or the state database (which
 * keeps its hash).
 */
export interface Endpoints {
  /** The metadata service's base URL as the node reaches it. */
  metadataUrl: string;
  store?: { url: string; token?: string };
}

export function configDrive(node: string, token: string, endpoints: Endpoints, pollingIntervalSeconds: number, trust?: NodeTrust): ConfigDriveMetadata {
  return ConfigDriveMetadata.parse({
    "os-collect-config": {
      collectors: ["config-drive", "heat", "local"],
      polling_interval: pollingIntervalSeconds,
      heat: { metadata_url: endpoints.metadataUrl, node, token },
    },
    ...(trust && (trust.keys.length || trust.ca) ? { [NODE_TRUST_KEY]: trust } : {}),
  });
}

/** What a stack's nodes trust, for their config drives: its image keys, and the CAs of its services and store. */
export function nodeTrustOf(stack: Pick<Stack, "trustedKeys">, cas: (string | undefined)[] = []): NodeTrust {
  const ca = [...new Set(cas.filter((c): c is string => Boolean(c)).map((c) => c.trim()))].join("\n");
  return { keys: stack.trustedKeys.map((k) => formatPublicKey(k.key)), ...(ca ? { ca: `${ca}\n` } : {}) };
}

/** The document GET /v1/nodes/<node>/metadata serves at `serial`. */
export function nodeMetadata(
  spec: Pick<NodeSpec, "name" | "role" | "metadata">,
  image: { name: string; digest: string; attempt?: number },
  serial: number,
  endpoints: Endpoints,
): NodeMetadata {
  return NodeMetadata.parse({
    ...spec.metadata,
    ooo: {
      version: METADATA_VERSION,
      node: spec.name,
      role: spec.role,
      serial,
      image,
      signal_url: signalUrl(endpoints.metadataUrl, spec.name),
      ...(endpoints.store ? { store: endpoints.store } : {}),
    },
  });
}

/** A fingerprint of everything but the serial: a change means the node must be given its metadata again. */
export function configHash(doc: NodeMetadata): string {
  const { ooo, ...rest } = doc;
  const { serial: _, ...stable } = ooo;
  return createHash("sha256").update(JSON.stringify(sortKeys({ ...rest, ooo: stable }))).digest("hex");
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object")
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  return v;
}
