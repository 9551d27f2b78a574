import type { PowerState } from "./drivers/driver.ts";
import type { NodeSpec, Stack } from "./stack.ts";
import type { NodeRow, SignalRow } from "./state.ts";

/**
 * What `ooo deploy` must do to make the nodes what the stack says, decided
 * from the stack, the state database and each machine's power — before
 * anything is touched. Pure: tested as a table.
 */
export type NodeAction =
  | { kind: "create"; why: string }
  | { kind: "rebuild"; why: string }
  | { kind: "power-on"; why: string }
  | { kind: "redeliver"; why: string }
  | { kind: "wait"; why: string }
  | { kind: "none"; why: string };

export interface PlannedNode {
  spec: NodeSpec;
  action: NodeAction;
  /** The image the node runs differs from the one its role's reference names now. */
  drift?: { running: string; wanted: string };
}

export interface NodeFacts {
  row?: NodeRow;
  power: PowerState;
  /** The config hash of the metadata the stack gives the node now (node-metadata.ts). */
  configHash: string;
  /** The digest the role's image reference resolves to now. */
  wantedDigest: string;
  /** The signal for the node's current serial, if any. */
  signal?: SignalRow;
}

export function planNode(spec: NodeSpec, f: NodeFacts): PlannedNode {
  const row = f.row;
  const action = ((): NodeAction => {
    if (!row) return { kind: "create", why: "new node" };
    switch (row.state) {
      case "new":
      case "writing-image":
        return { kind: "rebuild", why: row.state === "new" ? "never deployed" : "its image write did not finish" };
      case "powering-on":
        return f.power === "on" ? { kind: "wait", why: "resuming: it was powered on" } : { kind: "power-on", why: "resuming: it was being powered on" };
      case "booting":
      case "configuring":
        if (f.power === "off") return { kind: "power-on", why: "it is powered off" };
        if (row.config_hash !== f.configHash) return { kind: "redeliver", why: "its metadata changed" };
        return { kind: "wait", why: "resuming: waiting for its signal" };
      case "failed":
        // A configuration run that failed is retried with its metadata given again; anything else (no signal, a
        // driver error, a machine that stopped) is retried from a fresh image.
        if (f.signal?.status === "FAILURE" && f.power === "on")
          return { kind: "redeliver", why: row.config_hash !== f.configHash ? "its metadata changed after a failed run" : "retrying its failed configuration" };
        return { kind: "rebuild", why: "retrying a failed deploy" };
      case "active":
        if (f.power === "off") return { kind: "power-on", why: "it is powered off" };
        if (row.config_hash !== f.configHash) return { kind: "redeliver", why: "its metadata changed" };
        return { kind: "none", why: "up to date" };
      case "deleting":
        return { kind: "create", why: "its deletion did not finish: made anew" };
    }
  })();
  const drift =
    row?.image_digest && row.image_digest !== f.wantedDigest && action.kind !== "create" && action.kind !== "rebuild"
      ? { running: row.image_digest, wanted: f.wantedDigest }
      : undefined;
  return { spec, action, drift };
}

export function nodesToRemove(stack: Stack, rows: NodeRow[]): NodeRow[] {
  const wanted = new Set(stack.nodes.map((n) => n.name));
  return rows.filter((r) => !wanted.has(r.name)).sort((a, b) => a.role.localeCompare(b.role) || b.idx - a.idx);
}
