import { existsSync } from "node:fs";
import { join } from "node:path";
import { table } from "../lib/log.ts";
import { daemonPid, readPort } from "./daemons.ts";
import { driverFor } from "./drivers/index.ts";
import { NoState } from "./errors.ts";
import { PORT_FILE } from "./metadata-service.ts";
import { driverNode } from "./node-ops.ts";
import { embeddedStoreFiles, metadataDaemon } from "./services.ts";
import { stackTls } from "./stack-tls.ts";
import type { Stack } from "./stack.ts";
import { StateDb, type NodeState } from "./state.ts";
import { Machines } from "./bare-metal/machines.ts";
import { machineStatus, machinesTable, type MachineStatus } from "./bare-metal/report.ts";
import { dnsmasqFiles } from "./provisioning/dnsmasq.ts";
import { embeddedIronicFiles, embeddedIronicUrl } from "./ironic/embedded.ts";

/**
 * `ooo status STACK`: every node with its state, power, image and the
 * serial of its metadata (signalled / delivered), the last error, and the
 * stack's services. Reads the state; changes nothing, takes no lock.
 */
export interface NodeStatus {
  node: string;
  role: string;
  state: NodeState | "not deployed";
  power: string;
  image?: string;
  digest?: string;
  /** The trusted key that signed the image it runs; undefined: not verified (unsigned, or the stack trusted no key). */
  signer?: { name: string; id: string };
  serial?: number;
  signalledSerial?: number | null;
  since?: string;
  error?: string;
  driver: Record<string, string>;
}

export interface StackStatus {
  stateDir: string;
  stack?: string;
  nodes: NodeStatus[];
  services: { name: string; state: string }[];
  lastRun?: { id: number; command: string; result: string | null; startedAt: string };
  timeline?: string;
  /** Bare-metal machines: who runs on each, where its ramdisk is, the hardware it reported. */
  machines?: MachineStatus[];
}

export async function stackStatus(stateDir: string, stack?: Stack): Promise<StackStatus> {
  if (!existsSync(join(stateDir, "state.db"))) throw new NoState(stateDir);
  const db = StateDb.open(stateDir);
  try {
    const rows = db.nodes();
    const signers = new Map<string, ReturnType<StateDb["signerOf"]>>();
    const signerOf = (digest: string) => (signers.has(digest) ? signers.get(digest) : signers.set(digest, db.signerOf(digest)).get(digest));
    const nodes: NodeStatus[] = await Promise.all(
      rows.map(async (r) => {
        const driver = driverFor(r.driver);
        const node = driverNode(stateDir, r);
        // One BMC that does not answer does not hide the others: its node's power is unknown, and why.
        let powerProblem: string | undefined;
        const power = await driver.powerState(node).catch((e: Error) => {
          powerProblem = `power state unknown: ${e.message}`;
          return "unknown";
        });
        return {
          node: r.name,
          role: r.role,
          state: r.state,
          power,
          image: r.image_name ?? undefined,
          digest: r.image_digest ?? undefined,
          signer: r.image_digest ? signerOf(r.image_digest) : undefined,
          serial: r.serial,
          signalledSerial: r.signalled_serial,
          since: new Date(r.updated_at).toISOString(),
          error: r.error ?? powerProblem,
          driver: await driver.describe(node),
        };
      }),
    );
    const deployed = new Set(rows.map((r) => r.name));
    for (const spec of stack?.nodes ?? [])
      if (!deployed.has(spec.name)) nodes.push({ node: spec.name, role: spec.role, state: "not deployed", power: "-", driver: {} });
    const mdPid = daemonPid(metadataDaemon(stateDir));
    const scheme = stackTls(stateDir) ? "https" : "http";
    const services = [
      { name: "metadata service", state: mdPid ? `running (pid ${mdPid}, ${scheme}://127.0.0.1:${readPort(join(stateDir, PORT_FILE))})` : "stopped" },
    ];
    const store = embeddedStoreFiles(stateDir);
    const storePid = daemonPid(store.daemon);
    if (existsSync(store.dir))
      services.push({ name: "embedded image store", state: storePid ? `running (pid ${storePid}, ${scheme}://127.0.0.1:${readPort(store.portFile)})` : "stopped" });
    const ironic = embeddedIronicFiles(stateDir);
    const ironicPid = daemonPid(ironic.daemon);
    if (existsSync(ironic.dir))
      services.push({ name: "embedded Ironic", state: ironicPid ? `running (pid ${ironicPid}, ${embeddedIronicUrl(stateDir)})` : "stopped" });
    const dnsmasq = daemonPid(dnsmasqFiles(stateDir).daemon);
    if (existsSync(dnsmasqFiles(stateDir).config)) services.push({ name: "dnsmasq (provisioning)", state: dnsmasq ? `running (pid ${dnsmasq})` : "stopped" });
    const machines = new Machines(db).all().map(machineStatus);
    const last = db.lastRun();
    const timeline = join(stateDir, "timelines", "latest.html");
    return {
      stateDir,
      stack: db.info("stack.name"),
      nodes,
      services,
      lastRun: last && { id: last.id, command: last.command, result: last.result, startedAt: new Date(last.started_at).toISOString() },
      timeline: existsSync(timeline) ? timeline : undefined,
      ...(machines.length ? { machines } : {}),
    };
  } finally {
    db.close();
  }
}

export function statusText(s: StackStatus): string {
  const rows = s.nodes.map((n) => [
    n.node,
    n.role,
    n.state,
    n.power,
    n.digest ? `${n.image} ${n.digest.slice(7, 19)}` : "-",
    n.digest ? (n.signer ? `${n.signer.name} (${n.signer.id})` : "UNVERIFIED") : "-",
    n.serial === undefined ? "-" : `${n.signalledSerial ?? "-"}/${n.serial}`,
    n.driver.pid ?? "-",
    (n.error ?? "").split("\n")[0]!.slice(0, 70),
  ]);
  const lines = [
    `stack ${s.stack ?? "?"} (state ${s.stateDir})`,
    "",
    table(["node", "role", "state", "power", "image", "signed by", "signalled/serial", "pid", "error"], rows),
    "",
    ...(s.machines ? [machinesTable(s.machines), ""] : []),
    ...s.services.map((x) => `${x.name}: ${x.state}`),
  ];
  const unverified = s.nodes.filter((n) => n.digest && !n.signer);
  if (unverified.length)
    lines.push(
      `${unverified.map((n) => n.node).join(", ")} run${unverified.length === 1 ? "s" : ""} images not verified against a trusted key (the stack's trust.keys)`,
    );
  if (s.lastRun) lines.push(`last run: ${s.lastRun.command} #${s.lastRun.id} at ${s.lastRun.startedAt}: ${s.lastRun.result ?? "running"}`);
  if (s.timeline) lines.push(`timeline: ${s.timeline}`);
  const consoles = s.nodes.filter((n) => n.driver.console && n.state === "failed");
  for (const n of consoles) lines.push(`${n.node}'s console: ${n.driver.console}`);
  return lines.join("\n");
}
