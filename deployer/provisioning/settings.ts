import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import type { StackProvisioning } from "../stack.ts";

/**
 * The stack's provisioning network as its daemons need it, kept in the
 * state folder (provisioning.json) by every command that loads the stack
 * file: the metadata service and the embedded store listen on its address
 * too, and any later command that restarts them (upgrade, store-env) finds
 * the same addresses without the stack file.
 */
const FILE = "provisioning.json";

export const ProvisioningSettings = z.object({
  address: z.string(),
  interface: z.string(),
  dhcp: z.union([z.object({ range: z.tuple([z.string(), z.string()]) }), z.object({ proxy: z.literal(true) })]),
  ramdisk: z.string(),
  // ironic: absent in the files of ooo before the embedded Ironic had a port of its own.
  ports: z.object({ metadata: z.number(), store: z.number(), http: z.number(), ironic: z.number().default(6386) }),
});

export function noteProvisioning(stateDir: string, p: StackProvisioning | undefined) {
  const file = join(stateDir, FILE);
  if (!p) return rmSync(file, { force: true });
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const text = JSON.stringify(p, null, 2) + "\n";
  if (!existsSync(file) || readFileSync(file, "utf8") !== text) writeFileSync(file, text);
}

export function readProvisioning(stateDir: string): StackProvisioning | undefined {
  const file = join(stateDir, FILE);
  if (!existsSync(file)) return undefined;
  return ProvisioningSettings.parse(JSON.parse(readFileSync(file, "utf8")));
}
