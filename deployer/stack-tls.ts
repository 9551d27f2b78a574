import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureCa, ensureServerCert } from "../lib/certs.ts";
import { MissingRequirement } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import type { TlsFiles } from "../lib/tls.ts";
import { driverFor } from "./drivers/index.ts";
import type { Stack } from "./stack.ts";
import type { StateDb } from "./state.ts";

/**
 * The stack's own CA, for its embedded services (the metadata service, the
 * embedded image store): made on the stack's first deploy in the state
 * folder (tls/, 0700; keys 0600), its certificate given to every node on
 * its config drive. The services' certificate names every address a node
 * or ooo reaches them by (127.0.0.1, and each driver's forward addresses),
 * and is made again when those change.
 *
 * A stack deployed before ooo made CAs keeps plain http until it is
 * redeployed: its nodes' config drives name http:// URLs.
 */
export interface StackTls extends TlsFiles {
  /** The CA certificate (PEM file) clients trust. */
  ca: string;
  caPem: string;
}

const dirOf = (stateDir: string) => join(stateDir, "tls");
const CERT_NAME = "services";

/** The stack's TLS files when its CA exists (every command after the first deploy). */
export function stackTls(stateDir: string): StackTls | undefined {
  const dir = dirOf(stateDir);
  const files = { ca: join(dir, "ca.pem"), cert: join(dir, `${CERT_NAME}.pem`), key: join(dir, `${CERT_NAME}.key`) };
  if (!Object.values(files).every((f) => existsSync(f))) return undefined;
  return { ...files, caPem: readFileSync(files.ca, "utf8") };
}

/** The addresses nodes and ooo reach the services by. */
function serviceHosts(stack: Stack): string[] {
  const hosts = ["127.0.0.1", "localhost"];
  for (const driver of new Set(Object.values(stack.inventory).map((e) => e.driver)))
    for (const service of ["metadata", "store"] as const)
      hosts.push(new URL(driverFor(driver).serviceUrl(service, { tls: true, provisioning: stack.provisioning })).hostname.replace(/^\[|\]$/g, ""));
  return hosts;
}

/**
 * Decide and prepare TLS for the stack's services, before they start: the
 * CA exists → keep it (the certificate follows the hosts); none yet and no
 * node either → make it, unless the stack allows plain http; nodes made
 * before there was a CA → plain http, with a warning.
 */
export async function prepareStackTls(stack: Stack, stateDir: string, db: StateDb): Promise<StackTls | undefined> {
  const dir = dirOf(stateDir);
  const exists = existsSync(join(dir, "ca.pem"));
  if (!exists && stack.plainHttp) return undefined;
  if (!exists && db.nodes().length) {
    log.warn(`${stack.name}'s nodes were made before ooo gave stacks a CA: its services stay plain http until the nodes are made again (ooo delete, then ooo deploy)`);
    return undefined;
  }
  if (!Bun.which("openssl")) throw new MissingRequirement("openssl (it makes the stack's CA and its services' certificate)", "apt-get install openssl, or allow plain http: trust: {plain_http: true}");
  const ca = await ensureCa(dir, `ooo stack ${stack.name} CA`);
  await ensureServerCert(ca, dir, CERT_NAME, serviceHosts(stack));
  return stackTls(stateDir);
}
