import { existsSync } from "node:fs";
import { join } from "node:path";
import { BodyTooLarge, Busy, ByteBudget, declaredTooLarge, RateLimit } from "../../lib/limits.ts";
import { DEPLOY_VERSION, InventoryV1, LookupV1, RamdiskProgressV1, RamdiskResultV1, type RamdiskResult } from "../../wire/deploy.ts";
import { newToken, tokenHash } from "../metadata-service.ts";
import type { StateDb } from "../state.ts";
import { machineEventName, Machines, type MachineRow } from "./machines.ts";

/**
 * The metadata service's side of wire/deploy.ts: what deploy ramdisks ask.
 *
 *   POST /v1/ramdisk/lookup                 a machine armed by the deployer gets its token, once per arming
 *   POST /v1/ramdisk/<m>/inventory          its hardware, kept for ooo status and the disk check
 *   GET  /v1/ramdisk/<m>/command?wait=S     its command; with If-None-Match the answer waits for a change
 *   POST /v1/ramdisk/<m>/progress           events for the timeline (on its node, else on the machine)
 *   POST /v1/ramdisk/<m>/result             kept; a failed deploy fails its node with the step and the log's end
 *   GET  /v1/ramdisk/<m>/config-drive       its node's config drive
 *
 * A token opens one machine's URLs and is kept only as its hash; a machine
 * armed again gets a new one and the old one stops working. The lookup
 * carries no token: it names the machine of a MAC only while the deployer
 * has it armed (it is powering it into the ramdisk), which is what keeps
 * a MAC someone claims from being worth anything.
 */
const POLL_INTERVAL_SECONDS = 5;
/** Longest a command poll is held. */
const MAX_WAIT_SECONDS = 60;
const BODY_LIMIT = 256 << 10;

const problem = (status: number, message: string, headers: Record<string, string> = {}) => Response.json({ error: { code: status, message } }, { status, headers });

export function ramdiskRoutes({ db }: { db: StateDb }) {
  const machines = new Machines(db);
  const budget = new ByteBudget(16 << 20);
  // Per machine (and per address for lookups): an agent posts a progress report every 2 s at most.
  const rates = new RateLimit(300, 2);

  const readJson = async (req: Request): Promise<{ body: unknown } | Response> => {
    if (declaredTooLarge(req.headers, BODY_LIMIT)) return problem(413, `a ramdisk's report is at most ${BODY_LIMIT} bytes`);
    try {
      return await budget.read(req.body, BODY_LIMIT, (bytes) => ({ body: JSON.parse(new TextDecoder().decode(bytes)) as unknown }));
    } catch (e) {
      if (e instanceof BodyTooLarge) return problem(413, `a ramdisk's report is at most ${BODY_LIMIT} bytes`);
      if (e instanceof Busy) return problem(429, "too many large reports at once; retry", { "retry-after": "1" });
      if (e instanceof SyntaxError) return problem(400, "not JSON");
      throw e;
    }
  };

  /** Events go to the node the machine is being made, else to the machine itself. */
  const event = (m: MachineRow, kind: string, detail: Record<string, unknown>) =>
    db.event(m.node ?? machineEventName(m.name), kind, { machine: m.name, ...detail });

  const lookup = async (req: Request, from: string) => {
    const wait = rates.take(`lookup ${from}`);
    if (wait > 0) return problem(429, "too many lookups", { "retry-after": String(wait) });
    const read = await readJson(req);
    if (read instanceof Response) return read;
    const parsed = LookupV1.safeParse(read.body);
    if (!parsed.success) return problem(400, "not a lookup (wire/deploy.ts)");
    const m = machines.byMac(parsed.data.macs);
    // The same answer for "no such MAC" and "not armed": a MAC is only a claim.
    if (!m?.armed) return problem(404, "no machine armed for these MACs; the deployer arms a machine when it boots it into the ramdisk");
    const token = newToken();
    if (!machines.issueToken(m.name, tokenHash(token))) return problem(404, "no machine armed for these MACs");
    event(m, "ramdisk-lookup", { mac: parsed.data.macs[0], boot_mode: parsed.data.boot_mode, agent: parsed.data.agent });
    return Response.json({ version: DEPLOY_VERSION, machine: m.name, token, poll_interval: POLL_INTERVAL_SECONDS });
  };

  const authorize = (req: Request, name: string): MachineRow | Response => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "");
    if (!m) return problem(401, "send the machine's ramdisk token: Authorization: Bearer TOKEN");
    const owner = machines.byTokenHash(tokenHash(m[1]!));
    if (!owner) return problem(401, "the token is not valid (the machine was armed again, or left the ramdisk)");
    if (owner.name !== name) return problem(403, "this token belongs to another machine");
    return owner;
  };

  const command = async (req: Request, m: MachineRow, url: URL) => {
    machines.seen(m.name);
    const wait = Math.min(Math.max(Number(url.searchParams.get("wait") ?? 0) || 0, 0), MAX_WAIT_SECONDS);
    const etag = (serial: number) => `"${serial}"`;
    let row = m;
    if (req.headers.get("if-none-match") === etag(row.command_serial)) {
      // The deployer is another process: its command arrives through the database.
      for (const deadline = Date.now() + wait * 1000; Date.now() < deadline && !req.signal.aborted; ) {
        await Bun.sleep(250);
        const now = machines.get(m.name);
        if (!now || now.token_hash !== m.token_hash) return problem(401, "the token is not valid any more");
        row = now;
        if (req.headers.get("if-none-match") !== etag(row.command_serial)) break;
      }
      if (req.headers.get("if-none-match") === etag(row.command_serial)) return new Response(null, { status: 304, headers: { etag: etag(row.command_serial) } });
    }
    return Response.json(row.command, { headers: { etag: etag(row.command_serial), "cache-control": "no-store" } });
  };

  const configDrive = (m: MachineRow) => {
    if (!m.node || m.command.action !== "deploy") return problem(404, "no deploy is under way on this machine");
    const file = join(db.dir, "nodes", m.node, "config-drive.img");
    if (!existsSync(file)) return problem(404, `node ${m.node} has no config drive`);
    return new Response(Bun.file(file), { headers: { "content-type": "application/octet-stream", "cache-control": "no-store" } });
  };

  const result = (m: MachineRow, r: RamdiskResult) => {
    machines.recordResult(m.name, r);
    event(m, "ramdisk-result", { action: r.action, status: r.status, step: r.step, message: r.message.slice(0, 2000), restart: r.restart, ...(r.disk ? { disk: r.disk } : {}) });
    // Started by kexec: the ramdisk and its token are gone; the node speaks for itself now.
    if (r.action === "deploy" && r.status === "success" && r.restart === "kexec") machines.disarm(m.name, "node");
    if (r.action === "deploy" && r.status === "failure" && m.node) {
      const error = `the deploy ramdisk failed at ${r.step}: ${r.message}${r.log_tail ? `\nthe ramdisk's log ends:\n${r.log_tail.trimEnd().split("\n").slice(-30).join("\n")}` : ""}`;
      const node = db.node(m.node);
      if (node && ["writing-image", "powering-on", "booting"].includes(node.state))
        db.transition(m.node, "failed", { fields: { error }, detail: { why: "deploy ramdisk", step: r.step } });
    }
  };

  return async (req: Request, url: URL, from: string): Promise<Response | undefined> => {
    if (url.pathname === "/v1/ramdisk/lookup") return req.method === "POST" ? lookup(req, from) : problem(405, "POST only");
    const route = /^\/v1\/ramdisk\/([^/]+)\/(inventory|command|progress|result|config-drive)$/.exec(url.pathname);
    if (!route) return undefined;
    const m = authorize(req, decodeURIComponent(route[1]!));
    if (m instanceof Response) return m;
    const what = route[2]!;
    if (what === "command" || what === "config-drive") {
      if (req.method !== "GET") return problem(405, "GET only");
      return what === "command" ? command(req, m, url) : configDrive(m);
    }
    if (req.method !== "POST") return problem(405, "POST only");
    const wait = rates.take(m.name);
    if (wait > 0) return problem(429, `too many reports from ${m.name}`, { "retry-after": String(wait) });
    const read = await readJson(req);
    if (read instanceof Response) return read;
    const schema = { inventory: InventoryV1, progress: RamdiskProgressV1, result: RamdiskResultV1 }[what as "inventory" | "progress" | "result"];
    const parsed = schema.safeParse(read.body);
    if (!parsed.success) return problem(400, `not a ramdisk ${what} (wire/deploy.ts): ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    if (what === "inventory") {
      const inv = InventoryV1.parse(parsed.data);
      machines.recordInventory(m.name, inv);
      event(m, "ramdisk-inventory", { cpus: inv.cpus.count, memory_bytes: inv.memory_bytes, disks: inv.disks.map((d) => ({ name: d.name, size: d.size, serial: d.serial })) });
    } else if (what === "progress") {
      const p = RamdiskProgressV1.parse(parsed.data);
      machines.seen(m.name, p.phase);
      event(m, "ramdisk", { phase: p.phase, bytes_done: p.bytes_done, bytes_total: p.bytes_total, message: p.message, ramdisk_seconds: p.at });
    } else result(m, RamdiskResultV1.parse(parsed.data));
    return new Response(null, { status: 204 });
  };
}
