import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

/**
 * Which Ironic node is a stack node's: Ironic marks a deployed (or
 * claimed) node with an instance UUID, and ooo chooses it per stack node
 * and keeps it in the node's folder (`ironic.json`). A node of Ironic is
 * "ours" when its instance_uuid is the one there: ooo may redeploy or
 * undeploy it; any other instance's node it leaves alone.
 */
const Instance = z.object({ instance_uuid: z.uuid() });
const fileOf = (nodeDir: string) => join(nodeDir, "ironic.json");

/** The stack node's instance UUID, if it was ever given one. */
export function instanceOf(nodeDir: string): string | undefined {
  const file = fileOf(nodeDir);
  return existsSync(file) ? Instance.parse(JSON.parse(readFileSync(file, "utf8"))).instance_uuid : undefined;
}

/** The stack node's instance UUID, made on first use. */
export function ensureInstance(nodeDir: string): string {
  const known = instanceOf(nodeDir);
  if (known) return known;
  mkdirSync(nodeDir, { recursive: true, mode: 0o700 });
  const instance_uuid = crypto.randomUUID();
  writeFileSync(fileOf(nodeDir), JSON.stringify({ instance_uuid }) + "\n");
  return instance_uuid;
}

export const forgetInstance = (nodeDir: string) => rmSync(fileOf(nodeDir), { force: true });
