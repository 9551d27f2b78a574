import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { z } from "zod";
import { UsageError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { clientTls } from "../lib/tls.ts";
import { StoreClient } from "../store/client/client.ts";
import { CLI, daemonPid, freePort, readPort, startDaemon, stopDaemon, type Daemon } from "./daemons.ts";
import type { HostService } from "./drivers/driver.ts";
import { NodeTokenNotReadOnly } from "./errors.ts";
import { PORT_FILE } from "./metadata-service.ts";
import { readProvisioning } from "./provisioning/settings.ts";
import { stackTls } from "./stack-tls.ts";
import type { Stack } from "./stack.ts";

/**
 * The host services a stack's nodes use, as detached daemons of the state
 * folder: the metadata service (always), and the embedded image store
 * (`store: {embedded: true}`). Each `ensure…` is idempotent: a running,
 * answering daemon is left alone; a dead one is started again. Both speak
 * https with the stack's certificate once it has a CA (stack-tls.ts).
 */

// --- the metadata service ---

export function metadataDaemon(stateDir: string): Daemon {
  return {
    name: "the metadata service",
    pidFile: join(stateDir, "metadata.pid"),
    logFile: join(stateDir, "metadata.log"),
    match: ["metadata-service", stateDir],
  };
}

async function answers(url: string, check: (body: unknown) => boolean = () => true, ca?: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2_000), ...clientTls({ ca }) });
    return r.ok && check(await r.json().catch(() => undefined));
  } catch {
    return false;
  }
}

/**
 * Started with the stack's certificate when it has a CA (stack-tls.ts); a
 * daemon speaking the other scheme is restarted. With a provisioning
 * network (provisioning/settings.ts) it listens on its address too — the
 * metadata port (https) and the boot files' port (plain http) — and a
 * daemon listening elsewhere is restarted.
 */
export async function ensureMetadataService(stateDir: string): Promise<HostService> {
  const d = metadataDaemon(stateDir);
  const portFile = join(stateDir, PORT_FILE);
  const tls = stackTls(stateDir);
  const scheme = tls ? "https" : "http";
  const prov = readProvisioning(stateDir);
  const provListen = prov ? [`${prov.address}:${prov.ports.metadata}`, `${prov.address}:${prov.ports.http}`] : [];
  const service: HostService = { name: "metadata", host: "127.0.0.1", portFile, tls: Boolean(tls) };
  const healthy = async (pid: number) =>
    answers(
      `${scheme}://127.0.0.1:${readPort(portFile)}/healthz`,
      (b) => (b as { pid?: number })?.pid === pid && JSON.stringify((b as { provisioning?: string[] }).provisioning ?? []) === JSON.stringify(provListen),
      tls?.caPem,
    );
  const pid = daemonPid(d);
  if (pid !== undefined && (await healthy(pid))) return service;
  if (pid !== undefined) await stopDaemon(d);
  await log.step("start the metadata service", async () => {
    const port = readPort(portFile);
    const argv = [process.execPath, CLI, "metadata-service", "--state-dir", stateDir, ...(port ? ["--port", String(port)] : [])];
    if (tls) argv.push("--tls-cert", tls.cert, "--tls-key", tls.key);
    const started = await startDaemon(d, argv, { ready: healthy });
    log.info(`metadata service: ${scheme}://127.0.0.1:${readPort(portFile)}${prov ? `, ${scheme}://${provListen[0]}, boot files http://${provListen[1]}` : ""} (pid ${started}, log ${d.logFile})`);
  });
  return service;
}

export const stopMetadataService = (stateDir: string) => stopDaemon(metadataDaemon(stateDir));

// --- the image store ---

const Tokens = z.object({ write: z.string(), read: z.string() });

export interface EmbeddedStore {
  url: string;
  writeToken: string;
  readToken: string;
  dir: string;
  /** The stack's CA (PEM) when the store speaks https, and its file. */
  ca?: string;
  caFile?: string;
}

function embeddedPaths(stateDir: string) {
  const dir = join(stateDir, "store");
  return {
    dir,
    data: join(dir, "data"),
    config: join(dir, "store.yaml"),
    tokens: join(dir, "tokens.json"),
    portFile: join(dir, "port"),
    daemon: { name: "the embedded image store", pidFile: join(dir, "store.pid"), logFile: join(dir, "store.log"), match: ["store", join(dir, "store.yaml")] } as Daemon,
  };
}

export async function ensureEmbeddedStore(stateDir: string): Promise<EmbeddedStore> {
  const p = embeddedPaths(stateDir);
  mkdirSync(p.data, { recursive: true, mode: 0o700 });
  if (!existsSync(p.tokens))
    writeFileSync(p.tokens, JSON.stringify({ write: randomBytes(24).toString("hex"), read: randomBytes(24).toString("hex") }) + "\n", { mode: 0o600 });
  const tokens = Tokens.parse(JSON.parse(readFileSync(p.tokens, "utf8")));
  const tls = stackTls(stateDir);
  const scheme = tls ? "https" : "http";
  // With a provisioning network the store listens on its address, at its fixed port: machines fetch images there.
  const prov = readProvisioning(stateDir);
  const host = prov?.address ?? "127.0.0.1";
  const up = async (port: number | undefined) => port !== undefined && (await answers(`${scheme}://${host}:${port}/versions`, undefined, tls?.caPem));
  const listening = () => {
    try {
      return (parse(readFileSync(p.config, "utf8")) as { listen?: string }).listen;
    } catch {
      return undefined;
    }
  };
  const store = (port: number) => ({
    url: `${scheme}://${host}:${port}`,
    writeToken: tokens.write,
    readToken: tokens.read,
    dir: p.dir,
    ...(tls ? { ca: tls.caPem, caFile: tls.ca } : {}),
  });
  const pid = daemonPid(p.daemon);
  const port = readPort(p.portFile);
  const where = (n: number | undefined) => `${host}:${n}`;
  if (pid !== undefined && listening() === where(port) && (!prov || port === prov.ports.store) && (await up(port))) return store(port!);
  if (pid !== undefined) await stopDaemon(p.daemon);
  return log.step("start the embedded image store", async () => {
    const listen = prov ? prov.ports.store : freePort(port);
    // Plain http off loopback only for a stack that said trust: {plain_http: true} (it then has no CA).
    writeFileSync(p.config, stringify({ dir: p.data, listen: where(listen), ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : prov ? { plainHttp: true } : {}) }));
    writeFileSync(p.portFile, `${listen}\n`);
    const started = await startDaemon(p.daemon, [process.execPath, CLI, "store", "serve", "--config", p.config], {
      env: { OOO_STORE_WRITE_TOKEN: tokens.write, OOO_STORE_READ_TOKEN: tokens.read, OOO_STORE_URL: undefined, OOO_STORE_TOKEN: undefined },
      ready: () => up(listen),
    });
    log.info(`image store: ${scheme}://${host}:${listen} (pid ${started}, data ${p.data})`);
    return store(listen);
  });
}

export const stopEmbeddedStore = (stateDir: string) => stopDaemon(embeddedPaths(stateDir).daemon);

/** The embedded store's daemon and port file, for `ooo status`. */
export function embeddedStoreFiles(stateDir: string) {
  const p = embeddedPaths(stateDir);
  return { dir: p.dir, daemon: p.daemon, portFile: p.portFile, tokens: p.tokens };
}

/** The store a stack uses, with a read token, and how nodes reach it. */
export interface StackStore {
  client: StoreClient;
  url: string;
  /** The stack's own store (in its state folder), which the services' forwards and the provisioning address reach. */
  embedded?: boolean;
  readToken?: string;
  service: HostService;
  /** The CA (PEM) that signed the store's certificate, when it is not the system's: nodes get it on their config drive. */
  ca?: string;
  /** The name in the store's certificate, when nodes reach it by the driver's forward address instead. */
  serverName?: string;
}

function readCa(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read the store's CA file ${file} (stack store.ca_file): ${(e as Error).message}`);
  }
}

export async function storeFor(stack: Stack, stateDir: string): Promise<StackStore> {
  if (stack.store.kind === "embedded") {
    const s = await ensureEmbeddedStore(stateDir);
    return {
      client: new StoreClient({ url: s.url, token: s.readToken, ca: s.ca, source: `the stack's embedded store (its log: ${embeddedPaths(stateDir).daemon.logFile})` }),
      url: s.url,
      embedded: true,
      readToken: s.readToken,
      service: { name: "store", host: new URL(s.url).hostname, portFile: embeddedPaths(stateDir).portFile, tls: Boolean(s.ca) },
      ca: s.ca,
    };
  }
  const token = stack.store.tokenFile ? readFileSync(stack.store.tokenFile, "utf8").split("\n")[0]!.trim() : process.env.OOO_STORE_TOKEN;
  const url = new URL(stack.store.url);
  const https = url.protocol === "https:";
  const ca = stack.store.caFile ? readCa(stack.store.caFile) : undefined;
  const client = new StoreClient({ url: stack.store.url, token, ...(ca ? { ca } : {}), source: `store.url in ${stack.file}` });
  if (token) {
    const setting = stack.store.tokenFile ? `store.token_file (${stack.store.tokenFile})` : "OOO_STORE_TOKEN";
    const scope = await client.tokenScope();
    if (scope !== "read") throw new NodeTokenNotReadOnly(setting, stack.store.url, scope ?? "unknown");
  }
  const portFile = join(stateDir, "store.port");
  writeFileSync(portFile, `${url.port || (https ? 443 : 80)}\n`);
  return {
    client,
    url: stack.store.url,
    readToken: token,
    service: { name: "store", host: url.hostname, portFile, tls: https },
    ...(ca ? { ca } : {}),
    ...(https ? { serverName: url.hostname } : {}),
  };
}
