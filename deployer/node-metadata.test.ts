import { expect, test } from "bun:test";
import { formatPublicKey, generateKey } from "../lib/minisign.ts";
import { ConfigDriveMetadata } from "../wire/metadata.ts";
import { NODE_TRUST_KEY } from "../wire/trust.ts";
import { configDrive, nodeMetadata, nodeTrustOf } from "./node-metadata.ts";

const endpoints = { metadataUrl: "http://10.0.2.100", store: { url: "http://10.0.2.101", token: "read" } };

test("the stack's trusted keys go on the config drive, never into the served metadata", () => {
  const key = generateKey();
  const trust = nodeTrustOf({ trustedKeys: [{ name: "ci.pub", key }] });
  const drive = ConfigDriveMetadata.parse(configDrive("web-0", "tok", endpoints, 5, trust));
  expect(drive[NODE_TRUST_KEY]).toEqual({ keys: [formatPublicKey(key)] });
  const served = nodeMetadata({ name: "web-0", role: "web", metadata: {} }, { name: "kv", digest: `sha256:${"a".repeat(64)}` }, 1, endpoints);
  expect(JSON.stringify(served)).not.toContain(NODE_TRUST_KEY);
  // A stack that trusts no key gives its nodes no trust block.
  expect(configDrive("web-0", "tok", endpoints, 5, nodeTrustOf({ trustedKeys: [] }))).not.toHaveProperty(NODE_TRUST_KEY);
});
