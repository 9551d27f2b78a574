import { createHash, randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { log } from "../lib/log.ts";
import { publishAtomically } from "../lib/atomic.ts";
import { BodyTooLarge, Busy, ByteBudget, declaredTooLarge, RateLimit } from "../lib/limits.ts";
import { serverTls, type TlsFiles } from "../lib/tls.ts";
import { Progress } from "../wire/progress.ts";
import { CompletionSignal } from "../wire/signal.ts";
import { isBusy, STATE_DB, StateDb, type NodeState, type TokenNode } from "./state.ts";
import { ramdiskRoutes } from "./bare-metal/ramdisk-routes.ts";
import { pruneHistory } from "./history.ts";
import { bootRoutes } from "./provisioning/boot-routes.ts";
import { readProvisioning } from "./provisioning/settings.ts";

/**
 * The metadata service: the deployer's Heat API as the node agents see it
 * (wire/metadata.ts, wire/signal.ts). Bun.serve on loopback; nodes reach it
 * only through their driver's forward (qemu: a guestfwd to 127.0.0.1).
 *
 *   GET  /v1/nodes/<node>/metadata   Bearer <node token>  → NodeMetadata, ETag; 304 on If-None-Match
 *   POST /v1/nodes/<node>/signal     Bearer <node token>  → 204; the completion signal is recorded
 *   POST /v1/nodes/<node>/progress   Bearer <node token>  → 204; recorded as an event (wire/progress.ts)
 *   GET  /healthz                                         → who this is (for `ooo` to find its daemon)
 *
 * Every node has its own token and can read nothing else: a token opens
 * exactly one node's URLs. Only the token's sha256 is kept in the state.
 *
 * A node's POSTs become database rows, so they are limited (LIMITS) well
 * above what an agent sends — one signal per configuration run, a progress
 * report per 16 MiB an upgrade fetches — and an agent gone wrong or a
 * stolen token gets 413 or 429 with the reason. A signal for a serial the
 * node was never given is refused (409) and not kept.
 *
 * Why a daemon: nodes keep polling (and signal after every metadata change
 * or reboot) long after `ooo deploy` returns, so the service cannot live in
 * that command. `ooo deploy` starts it detached (daemons.ts) when it is not
 * running, it keeps no state of its own — everything is in the stack's
 * state database, which `ooo` commands read and write alongside it — and
 * `ooo delete` stops it when no node is left. It also stops by itself if its
 * state folder disappears. Restarting it loses nothing: the nodes' forwards
 * read its port file at every connection.
 */
export const PORT_FILE = "metadata.port";

export function newToken(): string {
  return randomBytes(24).toString("base64url");
}

export function tokenHash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The ETag of a node's metadata: its serial, and a hash so that a rewritten database cannot serve stale copies. */
function etagOf(node: Pick<TokenNode, "serial" | "metadata">): string {
  return `"${node.serial}-${createHash("sha256").update(node.metadata ?? "").digest("hex").slice(0, 16)}"`;
}

/** The states in which a node waits for its signal (or had one decided for it): a signal for its serial moves it then. */
const SIGNAL_MOVES: readonly NodeState[] = ["powering-on", "booting", "configuring", "active", "failed"];

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => Response.json(body, { status, headers });
const problem = (status: number, message: string, headers: Record<string, string> = {}) => json(status, { error: { code: status, message } }, headers);

/** A one-line account of a failed configuration run, for `ooo status` and the deploy's report. */
export function failureText(signal: CompletionSignal): string {
  const d = signal.data;
  const head = d.failed_script ? `${d.failed_script} failed (exit ${d.deploy_status_code})` : signal.reason;
  const tail = (d.output_tail ?? d.deploy_stderr.split("\n").slice(-10).join("\n")).trim();
  return tail ? `${head}:\n${tail}` : head;
}

/**
 * Per node: `burst` POSTs at once, then `perSecond`. Bodies: a signal holds
 * at most 2 × 256 Ki characters of script output (wire/signal.ts), a
 * progress report a line. All bodies being read at once share `budget`.
 */
export const LIMITS = {
  signal: { burst: 30, perSecond: 0.5, bytes: 2 << 20 },
  progress: { burst: 300, perSecond: 2, bytes: 16 << 10 },
  budget: 64 << 20,
};

export interface MetadataServiceOptions {
  db: StateDb;
  /**
   * The connection the nodes' signals, collected metadata and progress are
   * written through, without blocking (writeWhenFree; opened with busy
   * timeout 0): while one waits for the lock, the others are answered.
   * Default: `db` (its writes then wait inside the call).
   */
  writer?: StateDb;
  /** Where it listens on the provisioning network (for /healthz: ooo restarts a daemon that listens elsewhere). */
  provisioning?: string[];
}

export function metadataHandler({ db, writer = db, provisioning = [] }: MetadataServiceOptions) {
  const ramdisk = ramdiskRoutes({ db });
  const budget = new ByteBudget(LIMITS.budget);
  const rates = { signal: new RateLimit(LIMITS.signal.burst, LIMITS.signal.perSecond), progress: new RateLimit(LIMITS.progress.burst, LIMITS.progress.perSecond) };

  /** The JSON body of a node's POST within the limits of its kind, or the answer refusing it. */
  const limitedJson = async (req: Request, name: string, kind: "signal" | "progress"): Promise<{ body: unknown } | Response> => {
    const wait = rates[kind].take(name);
    if (wait > 0)
      return problem(429, `too many ${kind} posts from ${name}: at most ${LIMITS[kind].burst} at once, then ${LIMITS[kind].perSecond} a second`, { "retry-after": String(wait) });
    const max = LIMITS[kind].bytes;
    if (declaredTooLarge(req.headers, max)) return problem(413, `a ${kind} body is at most ${max} bytes`);
    try {
      return await budget.read(req.body, max, (bytes) => ({ body: JSON.parse(new TextDecoder().decode(bytes)) as unknown }));
    } catch (e) {
      if (e instanceof BodyTooLarge) return problem(413, `a ${kind} body is at most ${max} bytes`);
      if (e instanceof Busy) return problem(429, "the metadata service is reading too many large posts at once; retry", { "retry-after": String(e.retryAfterSeconds) });
      if (e instanceof SyntaxError) return problem(400, `the ${kind} is not JSON`);
      throw e;
    }
  };

  /** The node the request's token opens, if it is `name`; or the answer refusing it. */
  const authorize = (req: Request, name: string): (TokenNode & { tokenHash: string }) | Response => {
    const header = req.headers.get("authorization") ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) return problem(401, "send the node's token: Authorization: Bearer TOKEN");
    const hash = tokenHash(m[1]!);
    const node = db.nodeByToken(hash);
    if (!node) return problem(401, "the token is not valid (the node may have been redeployed with a new one)");
    if (node.name !== name) return problem(403, "this token belongs to another node");
    if (node.state === "deleting") return problem(404, `no node ${name}`);
    return { ...node, tokenHash: hash };
  };

  const getMetadata = async (req: Request, name: string) => {
    const node = authorize(req, name);
    if (node instanceof Response) return node;
    if (!node.metadata) return problem(404, `node ${name} has no metadata yet`);
    const etag = etagOf(node);
    if (req.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers: { etag } });
    if (node.collected_serial !== node.serial) {
      const at = Date.now();
      await writer.writeWhenFree(() => writer.noteCollected(name, node.serial, at));
    }
    return new Response(node.metadata, { headers: { "content-type": "application/json", etag, "cache-control": "no-store" } });
  };

  const postSignal = async (req: Request, name: string) => {
    const node = authorize(req, name);
    if (node instanceof Response) return node;
    const read = await limitedJson(req, name, "signal");
    if (read instanceof Response) return read;
    const parsed = CompletionSignal.safeParse(read.body);
    if (!parsed.success) return problem(400, `not a completion signal: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    const signal = parsed.data;
    // One transaction that holds the write lock from its start: the node as it is now, the signal kept, the node moved — or nothing.
    // On the writer's connection: the node read inside the transaction that changes it.
    return writer.writeWhenFree(() => {
      const now = writer.node(name);
      if (!now || now.state === "deleting") return problem(404, `no node ${name}`);
      if (now.token_hash !== node.tokenHash) return problem(401, "the token is not valid (the node may have been redeployed with a new one)");
      const serial = signal.metadata_serial ?? Number(/:(\d+)$/.exec(signal.id)?.[1] ?? now.serial);
      if (!Number.isSafeInteger(serial) || serial < 0 || serial > now.serial)
        return problem(409, `a signal for serial ${serial}, but ${name} was given serials up to ${now.serial} only`);
      const at = Date.now();
      writer.recordSignal({ node: name, serial, at, status: signal.status, reason: signal.reason, body: JSON.stringify(signal) });
      const detail = {
        serial,
        status: signal.status,
        reason: signal.reason,
        ...(signal.data.failed_script ? { failed_script: signal.data.failed_script } : {}),
        ...(signal.data.timings ? { timings: signal.data.timings } : {}),
      };
      // Like Heat's engine, a signal moves the node only while it waits for one (or to correct what a timeout decided).
      // A node that boots fast may signal before the deployer has recorded it booting: it is waited for from power-on.
      const current = serial === now.serial && SIGNAL_MOVES.includes(now.state);
      writer.event(name, current ? "signalled" : "signal-ignored", current ? detail : { ...detail, why: `the node is ${now.state} at serial ${now.serial}` }, { at });
      if (current) {
        if (signal.status === "SUCCESS") {
          if (now.state !== "active") writer.transition(name, "active", { fields: { signalled_serial: serial, error: null }, detail: { serial }, at });
          else writer.update(name, { signalled_serial: serial });
        } else writer.transition(name, "failed", { fields: { error: failureText(signal) }, detail: { serial, reason: signal.reason }, at });
      }
      return new Response(null, { status: 204 });
    });
  };

  /** Best effort, for people watching a long step (an upgrade): kept as events, moves nothing. */
  const postProgress = async (req: Request, name: string) => {
    const node = authorize(req, name);
    if (node instanceof Response) return node;
    const read = await limitedJson(req, name, "progress");
    if (read instanceof Response) return read;
    const parsed = Progress.safeParse(read.body);
    if (!parsed.success) return problem(400, "not a progress report (wire/progress.ts)");
    const { phase, to, bytes_done, bytes_total, message, at } = parsed.data;
    const now = Date.now();
    await writer.writeWhenFree(() => writer.event(name, "progress", { phase, to, bytes_done, bytes_total, message, node_seconds: at }, { at: now }));
    return new Response(null, { status: 204 });
  };

  return async (req: Request, server?: { requestIP(req: Request): { address: string } | null }): Promise<Response> => {
    const url = new URL(req.url);
    if (url.pathname === "/healthz" && req.method === "GET") return json(200, { service: "ooo-metadata", stateDir: db.dir, pid: process.pid, provisioning });
    if (url.pathname.startsWith("/v1/ramdisk/")) {
      try {
        return (await ramdisk(req, url, server?.requestIP(req)?.address ?? "?")) ?? problem(404, "not found");
      } catch (e) {
        log.error(`${req.method} ${url.pathname}: ${(e as Error).stack ?? e}`);
        return problem(500, "internal error (see the metadata service log)");
      }
    }
    const m = /^\/v1\/nodes\/([^/]+)\/(metadata|signal|progress)$/.exec(url.pathname);
    if (!m) return problem(404, "not found");
    const name = decodeURIComponent(m[1]!);
    try {
      if (m[2] === "metadata") return req.method === "GET" ? await getMetadata(req, name) : problem(405, "GET only");
      if (req.method !== "POST") return problem(405, "POST only");
      return m[2] === "signal" ? await postSignal(req, name) : await postProgress(req, name);
    } catch (e) {
      // The other process held the lock for the whole busy timeout: the node retries (its agents do on 503).
      if (isBusy(e)) return problem(503, "the state database is busy; retry", { "retry-after": "1" });
      log.error(`${req.method} ${url.pathname}: ${(e as Error).stack ?? e}`);
      return problem(500, "internal error (see the metadata service log)");
    }
  };
}

/**
 * Run the service for a state folder until SIGTERM/SIGINT, or until the
 * folder's database is gone. Listens on 127.0.0.1 — on the port it had
 * before when it is free — and publishes the port in PORT_FILE; https with
 * `tls` (the stack's certificate, stack-tls.ts).
 */
export async function serveMetadata(stateDir: string, options: { preferredPort?: number; stop?: AbortSignal; tls?: TlsFiles } = {}): Promise<void> {
  const db = StateDb.open(stateDir, { create: false });
  const writer = StateDb.open(stateDir, { create: false, busyTimeoutMs: 0 });
  const prov = readProvisioning(stateDir);
  const handler = metadataHandler({ db, writer, provisioning: prov ? [`${prov.address}:${prov.ports.metadata}`, `${prov.address}:${prov.ports.http}`] : [] });
  const tls = options.tls ? { tls: serverTls(options.tls) } : {};
  // idleTimeout: a ramdisk's command poll is held up to 60 s.
  const serve = (hostname: string, port: number) => Bun.serve({ hostname, port, fetch: handler, maxRequestBodySize: 4 << 20, idleTimeout: 90, ...tls });
  let server: ReturnType<typeof serve>;
  try {
    server = serve("127.0.0.1", options.preferredPort ?? 0);
  } catch {
    server = serve("127.0.0.1", 0);
  }
  // On the provisioning network: the same service at its fixed port (installed nodes keep the URL), and the boot files in plain http.
  const others = prov
    ? [
        serve(prov.address, prov.ports.metadata),
        Bun.serve({ hostname: prov.address, port: prov.ports.http, fetch: bootRoutes({ db, provisioning: prov }), idleTimeout: 60 }),
      ]
    : [];
  await publishAtomically(join(stateDir, PORT_FILE), async (p) => writeFileSync(p, `${server.port}\n`));
  const scheme = options.tls ? "https" : "http";
  log.info(
    `ooo metadata service for ${stateDir} on ${scheme}://127.0.0.1:${server.port}${prov ? `, ${scheme}://${prov.address}:${prov.ports.metadata} and boot files on http://${prov.address}:${prov.ports.http}` : ""} (pid ${process.pid})`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => {
      clearInterval(watch);
      clearInterval(prune);
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      resolve();
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    options.stop?.addEventListener("abort", stop, { once: true });
    const watch = setInterval(() => {
      if (!existsSync(join(stateDir, STATE_DB))) {
        log.info("the state database is gone: stopping");
        stop();
      }
    }, 5_000);
    // Nodes report between commands too: their history is bounded while no command runs (history.ts).
    const prune = setInterval(() => void pruneHistory(writer, { whenFree: true }).catch((e: Error) => log.warn(`pruning the history: ${e.message}`)), 86_400_000);
  });
  await Promise.all([server, ...others].map((s) => s.stop(true)));
  writer.close();
  db.close();
}
