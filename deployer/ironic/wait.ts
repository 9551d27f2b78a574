import { IronicFailed, IronicNodeFailed } from "../errors.ts";
import type { Allocation, IronicClient, IronicNode } from "./client.ts";

/**
 * Waiting for Ironic to finish what it was asked: polls the node until it
 * rests (no target state) where it was wanted. A node that comes to rest
 * elsewhere — a `… failed` state, or back where it came from with a
 * last_error (a failed verify returns to `enroll`) — is an error carrying
 * Ironic's last_error; one still moving at the deadline is one too.
 */
const FAILED = /failed$|^error$/;

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Each state (and deploy step) the node is seen in, for progress and the timeline. */
  onState?: (node: IronicNode) => void;
}

export async function waitForProvisionState(client: IronicClient, id: string, wanted: string, o: WaitOptions): Promise<IronicNode> {
  let seenMoving = false;
  let last = "";
  for (const deadline = Date.now() + o.timeoutMs; ; await Bun.sleep(o.intervalMs ?? 1_000)) {
    const node = await client.getNode(id);
    const now = `${node.provision_state}→${node.target_provision_state} ${node.deploy_step?.step ?? ""}`;
    if (now !== last) o.onState?.(node);
    last = now;
    if (node.target_provision_state) seenMoving = true;
    if (FAILED.test(node.provision_state) && node.provision_state !== wanted) throw new IronicNodeFailed(id, node.provision_state, node.last_error, wanted);
    if (!node.target_provision_state) {
      if (node.provision_state === wanted) return node;
      if (seenMoving || node.last_error) throw new IronicNodeFailed(id, node.provision_state, node.last_error, wanted);
    }
    if (Date.now() > deadline)
      throw new IronicFailed(client.url, id, undefined, `still "${node.provision_state}"${node.target_provision_state ? ` (on its way to "${node.target_provision_state}")` : ""} after ${o.timeoutMs / 1000} s; it should be "${wanted}"`);
  }
}

export async function waitForPower(client: IronicClient, id: string, wanted: "power on" | "power off", o: WaitOptions): Promise<IronicNode> {
  for (const deadline = Date.now() + o.timeoutMs; ; await Bun.sleep(o.intervalMs ?? 1_000)) {
    const node = await client.getNode(id);
    if (!node.target_power_state) {
      if (node.power_state === wanted) return node;
      if (node.last_error) throw new IronicNodeFailed(id, node.power_state ?? "power unknown", node.last_error, wanted);
    }
    if (Date.now() > deadline) throw new IronicFailed(client.url, id, undefined, `power is still "${node.power_state}" after ${o.timeoutMs / 1000} s; it should be "${wanted}"`);
  }
}

/** Until the conductor has picked a node for the allocation (`active`), or found none (`error`, with its reason). */
export async function waitForAllocation(client: IronicClient, id: string, o: WaitOptions): Promise<Allocation> {
  for (const deadline = Date.now() + o.timeoutMs; ; await Bun.sleep(o.intervalMs ?? 500)) {
    const a = await client.getAllocation(id);
    if (a.state === "active" && a.node_uuid) return a;
    if (a.state === "error") throw new IronicFailed(client.url, a.name ?? id, undefined, `no node of resource class ${a.resource_class} could be claimed: ${a.last_error ?? "Ironic gave no reason"}`);
    if (Date.now() > deadline) throw new IronicFailed(client.url, a.name ?? id, undefined, `the allocation is still "${a.state}" after ${o.timeoutMs / 1000} s`);
  }
}
