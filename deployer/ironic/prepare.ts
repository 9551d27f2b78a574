import { join } from "node:path";
import { log } from "../../lib/log.ts";
import { assignMachines } from "../assign-machines.ts";
import { startProvisioning } from "../bare-metal/prepare.ts";
import { IronicFailed } from "../errors.ts";
import type { ImageCache } from "../images.ts";
import type { StackStore } from "../services.ts";
import { stackTls } from "../stack-tls.ts";
import type { NodeSpec, Stack } from "../stack.ts";
import type { StateDb } from "../state.ts";
import { nodeProblems } from "./check.ts";
import type { IronicClient } from "./client.ts";
import { ironicClientFor, machineIdent } from "./connect.ts";
import { ensureEmbeddedIronic } from "./embedded.ts";
import { enrollMachines } from "./enroll.ts";
import { ensureInstance, forgetInstance, instanceOf } from "./instance.ts";
import { IronicPool, isEmbedded } from "./pool.ts";
import { waitForAllocation } from "./wait.ts";

/**
 * What a deploy does for its ironic nodes before any machine is touched:
 * the embedded Ironic started, with the provisioning network (deploy
 * ramdisk, dnsmasq with its machines' MACs, the boot files) and the
 * inventory's machines enrolled; each new node given its machine — kept,
 * named, the first free one of its entry, else a node claimed from the
 * entry's resource_class — and every one of those Ironic nodes checked
 * (ironic/check.ts). Returns the nodes that cannot go on, with why: they
 * fail without their machine being touched; the others go on.
 */
type Ctx = { stack: Stack; stateDir: string; db: StateDb; store: StackStore; cache: ImageCache };

const ironicEntries = (stack: Stack) =>
  Object.entries(stack.inventory).flatMap(([pool, entry]) => (entry.driver === "ironic" ? [{ pool, entry: IronicPool.parse(entry) }] : []));

/**
 * The stack's embedded Ironic running and its machines enrolled (ooo deploy,
 * ooo enroll): the machines Ironic could not verify, with why.
 */
export async function ensureEmbeddedMachines(o: Ctx): Promise<{ machine: string; message: string }[]> {
  const embedded = ironicEntries(o.stack).filter((e) => isEmbedded(e.entry));
  if (!embedded.length) return [];
  const ramdisk = await startProvisioning(o);
  await ensureEmbeddedIronic(o.stateDir);
  const client = ironicClientFor(embedded[0]!.entry, o.stateDir);
  const machines = Object.fromEntries(embedded.flatMap((e) => Object.entries(e.entry.machines ?? {})));
  const caPem = stackTls(o.stateDir)?.caPem;
  return log.step(`enroll ${Object.keys(machines).join(", ")} into the embedded Ironic`, () =>
    enrollMachines(client, machines, { provisioning: o.stack.provisioning!, ramdisk, ...(caPem ? { caPem } : {}) }),
  );
}

/** A node of the entry's resource class for the stack node, under its instance UUID (a claim a killed run made is taken up again). */
async function claim(client: IronicClient, o: Ctx, spec: NodeSpec, resourceClass: string): Promise<string> {
  const nodeDir = join(o.stateDir, "nodes", spec.name);
  const uuid = ensureInstance(nodeDir);
  let id = uuid;
  try {
    await client.getAllocation(uuid);
  } catch (e) {
    if (!(e instanceof IronicFailed && e.status === 404)) throw e;
    id = (await client.createAllocation({ resource_class: resourceClass, uuid, name: `ooo-${o.stack.name}-${spec.name}` })).uuid;
  }
  try {
    return (await waitForAllocation(client, id, { timeoutMs: 60_000 })).node_uuid!;
  } catch (e) {
    await client.deleteAllocation(id).catch(() => {});
    forgetInstance(nodeDir);
    throw e;
  }
}

export async function prepareIronic(o: Ctx): Promise<Map<string, string>> {
  const { stack, db } = o;
  const entries = new Map(ironicEntries(stack).map((e) => [e.pool, e.entry]));
  const nodes = stack.nodes.filter((n) => entries.has(n.pool));
  if (!nodes.length) return new Map();
  const enrolled = await ensureEmbeddedMachines(o);

  const listed = [...entries].flatMap(([pool, e]) => Object.keys(e.machines ?? {}).map((name) => ({ name, pool })));
  const open = new Set([...entries].filter(([, e]) => e.resource_class).map(([pool]) => pool));
  const unusable = assignMachines(db, nodes, listed, open);
  for (const p of enrolled) {
    const node = nodes.find((n) => n.machine === p.machine);
    if (node) unusable.set(node.name, `machine ${p.machine}: ${p.message}`);
  }

  const clients = new Map([...entries].map(([pool, e]) => [pool, ironicClientFor(e, o.stateDir)]));
  const claimed = new Set<string>();
  for (const spec of nodes.filter((n) => !n.machine && !unusable.has(n.name))) {
    try {
      spec.machine = await log.step(`${spec.name}: claim a node of resource class ${entries.get(spec.pool)!.resource_class}`, () =>
        claim(clients.get(spec.pool)!, o, spec, entries.get(spec.pool)!.resource_class!),
      );
      claimed.add(spec.name);
    } catch (e) {
      if (!(e instanceof IronicFailed)) throw e;
      unusable.set(spec.name, e.message);
    }
  }

  const checked = nodes.filter((n) => n.machine && !unusable.has(n.name));
  const problems = await log.step(`check the Ironic nodes of ${checked.map((n) => n.name).join(", ")}`, () =>
    Promise.all(
      checked.map(async (spec) => {
        const ident = machineIdent(entries.get(spec.pool)!, spec.machine!);
        const instance = instanceOf(join(o.stateDir, "nodes", spec.name));
        return { spec, problem: await nodeProblems(clients.get(spec.pool)!, ident, instance).catch((e: unknown) => (e instanceof IronicFailed ? e.message : Promise.reject(e))) };
      }),
    ),
  );
  for (const { spec, problem } of problems) {
    if (!problem) continue;
    unusable.set(spec.name, `machine ${spec.machine}: ${problem}`);
    // A claim that cannot be used goes back at once: nothing of the stack keeps it.
    if (claimed.has(spec.name)) {
      const nodeDir = join(o.stateDir, "nodes", spec.name);
      await clients.get(spec.pool)!.deleteAllocation(instanceOf(nodeDir)!).catch(() => {});
      forgetInstance(nodeDir);
      spec.machine = undefined;
    }
  }
  for (const [node, why] of unusable) if (nodes.some((n) => n.name === node)) log.error(`${node}: ${why}; its machine is left alone`);
  return unusable;
}
