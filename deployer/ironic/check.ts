import { IronicFailed } from "../errors.ts";
import type { IronicClient, IronicNode } from "./client.ts";

/**
 * An Ironic node about to be deployed for a stack node, checked before
 * anything is touched: it exists, is not in maintenance, is `available`
 * (or ours: deployed, or failed, for this stack node), Ironic validates the
 * interfaces a deploy uses before it has an image (power, management, boot,
 * network), and its BMC answers a read through Ironic. Every problem at
 * once, in one line; none: undefined.
 */
const INTERFACES = ["power", "management", "boot", "network"] as const;
/** Where a node of ours may be when it is deployed again. */
const OURS_DEPLOYABLE = new Set(["available", "active", "deploy failed"]);

export async function nodeProblems(client: IronicClient, ident: string, instance: string | undefined): Promise<string | undefined> {
  let n: IronicNode;
  try {
    n = await client.getNode(ident);
  } catch (e) {
    if (e instanceof IronicFailed && e.status === 404) return `Ironic ${client.url} has no node ${ident}`;
    throw e;
  }
  const problems: string[] = [];
  if (n.maintenance) problems.push(`it is in maintenance${n.maintenance_reason ? ` (${n.maintenance_reason})` : ""}`);
  const ours = instance !== undefined && n.instance_uuid === instance;
  const state = `"${n.provision_state}"${n.target_provision_state ? ` on its way to "${n.target_provision_state}"` : ""}`;
  if (!ours && n.instance_uuid) problems.push(`it is instance ${n.instance_uuid}'s (${state})`);
  else if (!ours && (n.provision_state !== "available" || n.target_provision_state)) problems.push(`it is ${state}, not available${n.last_error ? ` (${n.last_error})` : ""}`);
  else if (ours && (!OURS_DEPLOYABLE.has(n.provision_state) || n.target_provision_state)) problems.push(`it is ${state}: Ironic is not done with it`);
  const checks = await client.validate(n.uuid);
  for (const i of INTERFACES) if (checks[i]?.result === false) problems.push(`Ironic's ${i} interface: ${checks[i]!.reason ?? "invalid"}`);
  try {
    await client.bootDevice(n.uuid);
  } catch (e) {
    if (!(e instanceof IronicFailed)) throw e;
    problems.push(`its BMC does not answer Ironic: ${e.message.replace(/^Ironic \S+: node \S+: /, "")}`);
  }
  return problems.length ? `Ironic node ${n.name ?? n.uuid}: ${problems.join("; ")}` : undefined;
}
