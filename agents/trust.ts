import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
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

/** From the config drive's JSON: the trust block, kept for the other agents; a drive without one changes nothing. */
export function keepNodeTrust(drive: PyValue, file = trustFile()): NodeTrust | undefined {
  const block = isDict(drive) ? drive.get(NODE_TRUST_KEY) : undefined;
  if (block === undefined) return undefined;
  const trust = NodeTrust.parse(toPlain(block));
  mkdirSync(join(file, ".."), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(trust) + "\n", { mode: 0o644 });
  renameSync(tmp, file);
  return trust;
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
