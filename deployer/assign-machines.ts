import type { NodeSpec } from "./stack.ts";
import type { StateDb } from "./state.ts";

/**
 * Machines for the stack's nodes that each take one (bare metal, ironic):
 * a node keeps the machine it has; else it gets the one the stack names
 * for it, else the first free one of its entry, in the entry's order.
 * Sets `machine` on the specs. Returns the nodes left without one, with
 * why — except in `open` entries, whose nodes claim a machine elsewhere
 * (Ironic's resource_class): those are left without `machine`.
 */
export function assignMachines(db: StateDb, nodes: NodeSpec[], machines: { name: string; pool: string }[], open: Set<string> = new Set()): Map<string, string> {
  const unusable = new Map<string, string>();
  const taken = new Map<string, string>();
  for (const row of db.nodes()) if (row.machine) taken.set(row.machine, row.name);
  for (const spec of nodes) {
    const row = db.node(spec.name);
    if (row?.machine) {
      spec.machine = row.machine;
      continue;
    }
    if (spec.machine) {
      const owner = taken.get(spec.machine);
      if (owner && owner !== spec.name) unusable.set(spec.name, `its machine ${spec.machine} runs node ${owner} (delete that node first)`);
      else taken.set(spec.machine, spec.name);
    }
  }
  for (const spec of nodes.filter((n) => !n.machine && !unusable.has(n.name))) {
    const free = machines.find((m) => m.pool === spec.pool && !taken.has(m.name));
    if (!free) {
      if (!open.has(spec.pool)) unusable.set(spec.name, `no free machine left in inventory ${spec.pool}`);
      continue;
    }
    spec.machine = free.name;
    taken.set(free.name, spec.name);
  }
  return unusable;
}
