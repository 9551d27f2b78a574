#!/usr/bin/env bun
/**
 * What a site's operator does to the stack's embedded Ironic, run inside
 * the test bed's namespace (where Ironic listens, on the provisioning
 * address), with the login ooo keeps in the state folder:
 *
 *   ironic-admin.ts STATE_DIR node NAME                    → the node, as JSON
 *   ironic-admin.ts STATE_DIR maintenance NAME on REASON   → into maintenance
 *   ironic-admin.ts STATE_DIR maintenance NAME off
 */
import { ironicClientFor } from "../../deployer/ironic/connect.ts";

const [stateDir, op, name, ...rest] = process.argv.slice(2);
if (!stateDir || !name || (op !== "node" && op !== "maintenance")) {
  console.error("usage: ironic-admin.ts STATE_DIR node NAME | maintenance NAME on REASON | maintenance NAME off");
  process.exit(2);
}
const client = ironicClientFor({ driver: "ironic", url: "embedded" }, stateDir);
if (op === "maintenance") await client.setMaintenance(name, rest[0] === "on" ? rest.slice(1).join(" ") : false);
process.stdout.write(JSON.stringify(await client.getNode(name)) + "\n");
