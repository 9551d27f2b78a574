import { existsSync } from "node:fs";
import { isLoopback } from "../lib/tls.ts";
import { z } from "zod";
import { Deployment } from "../wire/metadata.ts";
import { DRIVERS } from "./drivers/index.ts";
import type { PathProblem, Stack } from "./stack.ts";

/**
 * Cross-field rules of a stack file, each a small function that adds
 * problems (errors, or warnings with level "warning") at a document path.
 * They run on the normalized stack — also on the parts of a broken file
 * that did parse, so one run shows every problem.
 */
type Rule = (stack: Stack, context: { named: boolean; provisioningGiven?: boolean }) => PathProblem[];

/** RFC 1123 host names: nodes are named after them (and see them as ooo.node). */
const HOSTNAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Keys of node metadata that the deployer writes itself. */
const RESERVED_KEYS = ["ooo", "os-collect-config"];

const stackName: Rule = (stack, { named }) =>
  named || HOSTNAME_RE.test(stack.name)
    ? []
    : [{ path: [], message: `the file name gives the stack no usable name (${stack.name}); add name: with lowercase letters, digits and '-'` }];

const storeChoice: Rule = (stack) => {
  const problems: PathProblem[] = [];
  const s = stack.store;
  if (s.kind === "url" && s.tokenFile && !existsSync(s.tokenFile))
    problems.push({ path: ["store", "token_file"], message: `no such file: ${s.tokenFile}` });
  if (s.kind === "url" && s.caFile && !existsSync(s.caFile)) problems.push({ path: ["store", "ca_file"], message: `no such file: ${s.caFile}` });
  if (s.kind === "url") {
    const url = new URL(s.url);
    if (url.protocol === "http:" && !isLoopback(url.hostname) && !stack.plainHttp)
      problems.push({
        path: ["store", "url"],
        message: "plain http to another host: the nodes' token and images would cross the network in clear; use https:// (with ca_file when its CA is not the system's), or allow it with trust: {plain_http: true}",
      });
    else if (url.protocol !== "http:" && url.protocol !== "https:") problems.push({ path: ["store", "url"], message: "must be an http:// or https:// URL" });
    if (s.caFile && url.protocol !== "https:") problems.push({ path: ["store", "ca_file"], message: "is for an https:// url" });
  }
  return problems;
};

const storeExclusive = (raw: { embedded?: boolean; url?: string; token_file?: string } | undefined): PathProblem[] => {
  if (!raw) return [];
  if (raw.embedded && raw.url) return [{ path: ["store"], message: "either embedded: true or url, not both" }];
  if (raw.token_file && !raw.url) return [{ path: ["store", "token_file"], message: "a token_file needs a url (the embedded store makes its own tokens)" }];
  return [];
};

const rolePools: Rule = (stack) => {
  const pools = Object.keys(stack.inventory);
  const problems: PathProblem[] = [];
  for (const role of stack.roles) {
    if (role.pool === "" && pools.length > 1)
      problems.push({ path: ["roles", role.name], message: `name its inventory: there are several entries (${pools.join(", ")})` });
    else if (role.pool === "" && pools.length === 0)
      problems.push({ path: ["inventory"], message: "is empty: roles need machines" });
    else if (!stack.inventory[role.pool])
      problems.push({ path: ["roles", role.name, "inventory"], message: `no inventory entry ${role.pool} (entries: ${pools.join(", ") || "none"})` });
  }
  return problems;
};

const nodeNames: Rule = (stack) => {
  const problems: PathProblem[] = [];
  const owner = new Map<string, string>();
  for (const role of stack.roles) {
    const where = ["roles", role.name, ...(role.nameFormat.includes("{") || role.nameFormat !== "{role}-{index}" ? ["name_format"] : [])];
    if (role.count > 1 && !role.nameFormat.includes("{index}")) {
      problems.push({ path: ["roles", role.name, "name_format"], message: `must contain {index}: the role has ${role.count} nodes` });
      continue;
    }
    for (const node of stack.nodes.filter((n) => n.role === role.name)) {
      if (!HOSTNAME_RE.test(node.name)) {
        problems.push({ path: where, message: `node name ${node.name} is not a host name (lowercase letters, digits, '-', at most 63)` });
        break;
      }
      const other = owner.get(node.name);
      if (other !== undefined)
        problems.push({
          path: where,
          message: `duplicate node name ${node.name}: ${other === role.name ? "twice in this role" : `also a node of role ${other}`}`,
        });
      else owner.set(node.name, role.name);
    }
  }
  return problems;
};

const overridesNameNodes: Rule = (stack) =>
  stack.roles.flatMap((role) => {
    const names = new Set(stack.nodes.filter((n) => n.role === role.name).map((n) => n.name));
    return Object.keys(role.overrides)
      .filter((n) => !names.has(n))
      .map((n) => ({
        path: ["roles", role.name, "nodes", n],
        message: `no node ${n} in role ${role.name} at count ${role.count} (kept for when the role grows)`,
        level: "warning" as const,
      }));
  });

const reservedMetadata: Rule = (stack) =>
  stack.roles.flatMap((role) => [
    ...RESERVED_KEYS.filter((k) => k in role.metadata).map((k) => ({
      path: ["roles", role.name, "metadata", k],
      message: "is written by the deployer; choose another key",
    })),
    ...Object.entries(role.overrides).flatMap(([node, o]) =>
      RESERVED_KEYS.filter((k) => k in (o.metadata ?? {})).map((k) => ({
        path: ["roles", role.name, "nodes", node, "metadata", k],
        message: "is written by the deployer; choose another key",
      })),
    ),
  ]);

/** Heat-style software deployments must be what the agents accept (wire/metadata.ts), or the node would refuse its metadata. */
const deployments: Rule = (stack) =>
  stack.roles.flatMap((role) =>
    [
      { path: ["roles", role.name, "metadata"], metadata: role.metadata },
      ...Object.entries(role.overrides).map(([node, o]) => ({ path: ["roles", role.name, "nodes", node, "metadata"], metadata: o.metadata ?? {} })),
    ].flatMap(({ path, metadata }) => {
      if (!("deployments" in metadata)) return [];
      const r = z.array(Deployment).safeParse(metadata.deployments);
      return r.success
        ? []
        : r.error.issues.map((i) => ({ path: [...path, "deployments", ...i.path.filter((p): p is string | number => typeof p !== "symbol")], message: i.message }));
    }),
  );

const rollingUpdates: Rule = (stack) =>
  stack.roles.flatMap((role) => {
    const r = role.rollingUpdates;
    const path = ["roles", role.name, "rolling_updates", "min_in_service"];
    // rebuild-in-place takes a node out of service to update it; replace adds the new one first (the group grows, as Heat's).
    const most = r.policy === "replace" ? role.count : role.count - 1;
    if (role.count > 0 && r.minInService > most)
      return [
        {
          path,
          message: `${r.minInService} would leave no node free to update in a role of ${role.count} (${r.policy}: at most ${Math.max(most, 0)})`,
        },
      ];
    return [];
  });

const poolCapacity: Rule = (stack) =>
  Object.entries(stack.inventory).flatMap(([name, pool]) => {
    const max = (pool as { max_nodes?: number }).max_nodes;
    const used = stack.nodes.filter((n) => n.pool === name).length;
    return max !== undefined && used > max
      ? [{ path: ["inventory", name, "max_nodes"], message: `the roles want ${used} nodes from ${name}, which has room for ${max}` }]
      : [];
  });

/** The entries whose nodes each take a machine (bare metal, ironic): their machines, and whether more can be claimed. */
function machineEntries(stack: Stack) {
  return Object.entries(stack.inventory).flatMap(([pool, entry]) => {
    const listed = DRIVERS[entry.driver]?.machinesOf?.(entry as never);
    return listed ? [{ pool, ...listed }] : [];
  });
}

const provisioningNeeded: Rule = (stack, { provisioningGiven }) => {
  const entries = machineEntries(stack);
  // Given but broken: its own problems say what is wrong.
  if (!entries.length || stack.provisioning || provisioningGiven) return [];
  return [{ path: ["provisioning"], message: `is required: inventory ${entries.map((e) => e.pool).join(", ")} has machines that boot from the provisioning network (address, interface, dhcp, ramdisk)` }];
};

/** Machine names and MACs each name one machine of the stack (lookups are by MAC; machines by name). */
const machinesUnique: Rule = (stack) => {
  const problems: PathProblem[] = [];
  const names = new Map<string, string>();
  const macs = new Map<string, string>();
  for (const { pool, machines } of machineEntries(stack))
    for (const [name, m] of Object.entries(machines)) {
      const other = names.get(name);
      if (other !== undefined) problems.push({ path: ["inventory", pool, "machines", name], message: `a machine of this name is in ${other} too: machine names are the stack's` });
      names.set(name, pool);
      m.macs.forEach((mac, i) => {
        const owner = macs.get(mac);
        if (owner !== undefined) problems.push({ path: ["inventory", pool, "machines", name, "macs", i], message: `${mac} is machine ${owner}'s too` });
        macs.set(mac, name);
      });
    }
  return problems;
};

/** Nodes of a bare-metal or ironic entry: a machine each, the ones named must exist and be named once. */
const nodeMachines: Rule = (stack) => {
  const problems: PathProblem[] = [];
  for (const { pool, machines, open } of machineEntries(stack)) {
    const nodes = stack.nodes.filter((n) => n.pool === pool);
    if (!open && nodes.length > Object.keys(machines).length)
      problems.push({ path: ["inventory", pool, "machines"], message: `the roles want ${nodes.length} nodes from ${pool}, which has ${Object.keys(machines).length} machines` });
    const taken = new Map<string, string>();
    for (const n of nodes.filter((x) => x.machine)) {
      const path = ["roles", n.role, "nodes", n.name, "machine"];
      if (!machines[n.machine!]) problems.push({ path, message: `no machine ${n.machine} in inventory ${pool} (machines: ${Object.keys(machines).join(", ")})` });
      else if (taken.has(n.machine!)) problems.push({ path, message: `machine ${n.machine} is node ${taken.get(n.machine!)}'s already` });
      else taken.set(n.machine!, n.name);
    }
  }
  for (const n of stack.nodes)
    // (an entry that did not parse has no driver to speak of: its own problem was reported)
    if (n.machine && DRIVERS[n.driver] && !DRIVERS[n.driver]!.machinesOf)
      problems.push({ path: ["roles", n.role, "nodes", n.name, "machine"], message: `is for inventory entries of machines (ipmi, redfish, ironic); ${n.pool} is ${n.driver}` });
  return problems;
};

const RULES: Rule[] = [
  stackName,
  storeChoice,
  rolePools,
  nodeNames,
  overridesNameNodes,
  reservedMetadata,
  deployments,
  rollingUpdates,
  poolCapacity,
  provisioningNeeded,
  machinesUnique,
  nodeMachines,
];

export function stackRules(stack: Stack, context: { named: boolean; provisioningGiven?: boolean; rawStore?: Parameters<typeof storeExclusive>[0] }): PathProblem[] {
  return [...storeExclusive(context.rawStore), ...RULES.flatMap((rule) => rule(stack, context))];
}
