import { readFileSync } from "node:fs";
import { readBmcLogin } from "../bmc/credentials.ts";
import type { DriverNode } from "../drivers/driver.ts";
import { DriverFailed, IronicFailed } from "../errors.ts";
import { stackTls } from "../stack-tls.ts";
import { IronicClient } from "./client.ts";
import { embeddedIronicFiles, embeddedIronicUrl, ensureEmbeddedIronic } from "./embedded.ts";
import { IronicPool, isEmbedded } from "./pool.ts";

/**
 * The Ironic of an inventory entry, logged in: the stack's embedded one
 * (the login ooo made, where it listens, the stack's CA) or a site's (the
 * entry's credentials and CA file). Read afresh each time: a later ooo
 * process finds the same Ironic from the state folder alone.
 */
export function ironicClientFor(pool: IronicPool, stateDir: string): IronicClient {
  if (isEmbedded(pool)) {
    const url = embeddedIronicUrl(stateDir);
    if (!url) throw new IronicFailed("embedded", undefined, undefined, `was never started for ${stateDir}`, { hint: "`ooo deploy` (or `ooo enroll`) starts it." });
    const loginFile = embeddedIronicFiles(stateDir).login;
    const ca = stackTls(stateDir)?.caPem;
    return new IronicClient({ url, login: readBmcLogin(loginFile, "Ironic"), loginSource: loginFile, ...(ca ? { ca } : {}) });
  }
  const file = pool.credentials!;
  return new IronicClient({ url: pool.url, login: readBmcLogin(file, "Ironic"), loginSource: file, ...(pool.ca_file ? { ca: readFileSync(pool.ca_file, "utf8") } : {}) });
}

export const connectIronic = (node: Pick<DriverNode, "pool" | "stateDir">) => ironicClientFor(IronicPool.parse(node.pool), node.stateDir);

/** The same, the embedded Ironic started first when it is not running (undeploying needs it; `ooo delete` stops it after). */
export async function startIronic(node: Pick<DriverNode, "pool" | "stateDir">): Promise<IronicClient> {
  const pool = IronicPool.parse(node.pool);
  if (isEmbedded(pool)) await ensureEmbeddedIronic(node.stateDir);
  return ironicClientFor(pool, node.stateDir);
}

/** The Ironic node of a machine: its `node:` in a site's Ironic, its own name in the embedded one; a claimed node is its UUID. */
export function machineIdent(pool: IronicPool, machine: string): string {
  const m = pool.machines?.[machine];
  return m ? (m.node ?? machine) : machine;
}

export function ironicIdent(node: Pick<DriverNode, "name" | "pool" | "machine">): string {
  if (!node.machine) throw new DriverFailed(node.name, "has no Ironic node (this is a bug in ooo)");
  return machineIdent(IronicPool.parse(node.pool), node.machine);
}
