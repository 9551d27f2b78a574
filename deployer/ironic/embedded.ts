import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { parse, stringify } from "yaml";
import { z } from "zod";
import { MissingRequirement } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { clientTls } from "../../lib/tls.ts";
import { daemonPid, freePort, readPort, startDaemon, stopDaemon, type Daemon } from "../daemons.ts";
import { ServiceFailed } from "../errors.ts";
import { readProvisioning } from "../provisioning/settings.ts";
import { stackTls } from "../stack-tls.ts";
import { ironicConf, ironicFolders, ironicLayout } from "./config.ts";

/**
 * A stack's own Ironic, from Debian's packages, as a daemon of the state
 * folder (like the embedded store): `ironic` (API and conductor in one
 * process), SQLite, http_basic with a password ooo generates, listening on
 * the provisioning address (loopback for a stack without one), https with
 * the stack's certificate once it has a CA. `ensureEmbeddedIronic` is
 * idempotent: a running, answering daemon with the same configuration is
 * left alone; otherwise it is (re)started. `ooo delete` stops it.
 *
 * The password never leaves files of mode 0600: login.yaml (what ooo
 * sends) and htpasswd (its bcrypt hash, what Ironic checks).
 */
const USERNAME = "ooo";
const SERVICE = "the embedded Ironic";

export interface EmbeddedIronic {
  url: string;
  username: string;
  password: string;
  /** {username, password}, mode 0600: what an inventory entry's `credentials` may name. */
  loginFile: string;
  /** The CA (PEM) when Ironic speaks https. */
  ca?: string;
  dir: string;
  logFile: string;
}

const Login = z.strictObject({ username: z.string(), password: z.string() });

export function embeddedIronicFiles(stateDir: string) {
  const dir = join(stateDir, "ironic");
  const layout = ironicLayout(dir);
  return {
    ...layout,
    dir,
    login: join(dir, "login.yaml"),
    portFile: join(dir, "port"),
    daemon: { name: SERVICE, pidFile: join(dir, "ironic.pid"), logFile: layout.log, match: ["ironic", layout.conf] } as Daemon,
  };
}

/** Debian's Ironic (ironic-common) and genisoimage, which turns a JSON config drive into the ISO the agent writes. */
function checkInstalled() {
  const missing = ["ironic", "ironic-dbsync", "genisoimage"].filter((p) => !Bun.which(p));
  if (missing.length) throw new MissingRequirement(`${missing.join(", ")} (the embedded Ironic)`, "apt-get install ironic-common genisoimage (or sh tools/ensure.sh)");
}

/**
 * The login, made once: a random password in login.yaml and its bcrypt
 * hash in htpasswd. Cost 4, bcrypt's least: Ironic checks the hash on every
 * request (cost 10 takes 76 ms a request here, 4 under 1 ms), and a
 * 256-bit random password gains nothing from a slower hash.
 */
async function ensureLogin(f: ReturnType<typeof embeddedIronicFiles>): Promise<z.infer<typeof Login>> {
  if (!existsSync(f.login)) writeFileSync(f.login, stringify({ username: USERNAME, password: randomBytes(32).toString("base64url") }), { mode: 0o600 });
  const login = Login.parse(parse(readFileSync(f.login, "utf8")));
  const current = existsSync(f.htpasswd) ? readFileSync(f.htpasswd, "utf8") : "";
  const entry = current.split("\n").find((l) => l.startsWith(`${login.username}:`));
  if (!entry || !(await Bun.password.verify(login.password, entry.slice(login.username.length + 1))))
    writeFileSync(f.htpasswd, `${login.username}:${await Bun.password.hash(login.password, { algorithm: "bcrypt", cost: 4 })}\n`, { mode: 0o600 });
  return login;
}

/** The provisioning address, where machines reach it; loopback for a stack without a provisioning network. */
const listenHost = (stateDir: string) => readProvisioning(stateDir)?.address ?? "127.0.0.1";
const urlOf = (stateDir: string, port: number) => `${stackTls(stateDir) ? "https" : "http"}://${listenHost(stateDir)}:${port}`;

/** Where the embedded Ironic listens (or last listened), for `ooo status`. */
export function embeddedIronicUrl(stateDir: string): string | undefined {
  const port = readPort(embeddedIronicFiles(stateDir).portFile);
  return port === undefined ? undefined : urlOf(stateDir, port);
}

async function answers(url: string, ca?: string): Promise<boolean> {
  try {
    const r = await fetch(`${url}/v1`, { signal: AbortSignal.timeout(2_000), ...clientTls({ ca }) });
    return r.ok;
  } catch {
    return false;
  }
}

/** oslo.config reads OS_<GROUP>__<OPTION> from the environment: none of the caller's may change the daemon. */
const withoutOsVariables = () => Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith("OS_")).map((k) => [k, undefined]));

async function createSchema(f: ReturnType<typeof embeddedIronicFiles>) {
  await log.step("create the embedded Ironic's database", async () => {
    const r = await execa("ironic-dbsync", ["--config-file", f.conf, "--config-dir", f.confDir, "create_schema"], { reject: false, all: true, env: withoutOsVariables(), stdin: "ignore" });
    if (r.exitCode !== 0) throw new ServiceFailed(SERVICE, `ironic-dbsync create_schema failed (exit ${r.exitCode}):\n${String(r.all).trimEnd().split("\n").slice(-15).join("\n")}`);
  });
}

export async function ensureEmbeddedIronic(stateDir: string, options: { port?: number } = {}): Promise<EmbeddedIronic> {
  checkInstalled();
  const f = embeddedIronicFiles(stateDir);
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  for (const d of ironicFolders(f.dir)) mkdirSync(d, { recursive: true, mode: 0o700 });
  const login = await ensureLogin(f);
  const tls = stackTls(stateDir);
  const prov = readProvisioning(stateDir);
  const host = listenHost(stateDir);
  const pid = daemonPid(f.daemon);
  const previous = readPort(f.portFile);
  // Without a provisioning network: the port it had (still its own while it runs), else a free one.
  const port = options.port ?? (prov ? prov.ports.ironic : pid !== undefined && previous !== undefined ? previous : freePort(previous));
  const url = urlOf(stateDir, port);
  const conf = ironicConf({
    dir: f.dir,
    listen: { host, port },
    apiUrl: url,
    httpUrl: `http://${host}:${prov?.ports.http ?? 8080}/ironic`,
    ...(tls ? { tls: { cert: tls.cert, key: tls.key, ca: tls.ca } } : {}),
  });
  const ironic: EmbeddedIronic = { url, username: login.username, password: login.password, loginFile: f.login, dir: f.dir, logFile: f.log, ...(tls ? { ca: tls.caPem } : {}) };
  const same = existsSync(f.conf) && readFileSync(f.conf, "utf8") === conf;
  if (pid !== undefined && same && (await answers(url, tls?.caPem))) return ironic;
  if (pid !== undefined) await stopDaemon(f.daemon);
  writeFileSync(f.conf, conf, { mode: 0o600 });
  writeFileSync(f.portFile, `${port}\n`);
  if (!existsSync(f.database)) await createSchema(f);
  return log.step("start the embedded Ironic", async () => {
    const started = await startDaemon(f.daemon, ["ironic", "--config-file", f.conf, "--config-dir", f.confDir], {
      env: withoutOsVariables(),
      ready: () => answers(url, tls?.caPem),
      timeoutMs: 60_000,
    });
    log.info(`Ironic: ${url} (pid ${started}, log ${f.log})`);
    return ironic;
  });
}

export const stopEmbeddedIronic = (stateDir: string) => stopDaemon(embeddedIronicFiles(stateDir).daemon);
