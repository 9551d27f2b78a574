import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NODE_TRUST_KEY, NodeTrust } from "../wire/trust.ts";
import { isDict, toPlain, type PyValue } from "./pyjson/value.ts";

/**
 * What the node trusts (wire/trust.ts), as its config drive says: the
 * config-drive collector keeps it in the run folder when it reads the drive
 * (keepNodeTrust), and the other agents — the takeover, os-refresh-config's
 * signal, the heat collector — read it from there (readNodeTrust). It never
 * comes from the metadata service or the store, whose answers it is used to
 * check.
 */
export const trustFile = (env = process.env) => join(env.OOO_RUN_DIR ?? "/run/ooo", "trust.json");
/** The CAs an agent's https requests trust: the drive's, then the system's (a request's own CA list replaces the system's). */
export const caBundleFile = (env = process.env) => join(env.OOO_RUN_DIR ?? "/run/ooo", "ca.pem");
const SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt";

function writeAtomically(file: string, text: string) {
  mkdirSync(join(file, ".."), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
}

/** From the config drive's JSON: the trust block, kept for the other agents; a drive without one changes nothing. */
export function keepNodeTrust(drive: PyValue, file = trustFile(), bundle = caBundleFile(), systemCas = SYSTEM_CAS): NodeTrust | undefined {
  const block = isDict(drive) ? drive.get(NODE_TRUST_KEY) : undefined;
  if (block === undefined) return undefined;
  const trust = NodeTrust.parse(toPlain(block));
  writeAtomically(file, JSON.stringify(trust) + "\n");
  if (trust.ca) writeAtomically(bundle, `${trust.ca.trim()}\n${existsSync(systemCas) ? readFileSync(systemCas, "utf8") : ""}`);
  return trust;
}

/**
 * fetch()'s `tls` for an agent's request: the CA bundle when the drive
 * gave a CA, else nothing (the system's CAs). The certificate is always
 * verified.
 */
export function nodeFetchTls(bundle = caBundleFile()): { tls?: { ca: string } } {
  try {
    return { tls: { ca: readFileSync(bundle, "utf8") } };
  } catch {
    return {};
  }
}

/**
 * The environment of the agents' children (os-refresh-config, the
 * takeover): the CA bundle as OOO_STORE_CA (the store client's) and
 * NODE_EXTRA_CA_CERTS (every other fetch), when there is one.
 */
export function trustEnv(env: Record<string, string | undefined>, bundle = caBundleFile()): Record<string, string | undefined> {
  if (!existsSync(bundle)) return env;
  return { ...env, OOO_STORE_CA: env.OOO_STORE_CA || bundle, NODE_EXTRA_CA_CERTS: env.NODE_EXTRA_CA_CERTS || bundle };
}

/** What the config drive said the node trusts; undefined when it said nothing (no keys, no CA: unsigned images and the system's CAs only). */
export function readNodeTrust(file = trustFile()): NodeTrust | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
  return NodeTrust.parse(JSON.parse(text));
}
