import { createHash, timingSafeEqual } from "node:crypto";
import { Forbidden, Unauthorized } from "./errors.ts";

/**
 * Two kinds of bearer token, sent as Keystone's `X-Auth-Token` so the glance
 * CLI works with `--os-auth-token`: write tokens for publishers (CI), read
 * tokens for nodes. No Keystone: the store's config lists the tokens.
 */
export interface Tokens {
  write: string[];
  read: string[];
}
export type Access = "read" | "write";

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Compare hashes, not strings: equal length, constant time. */
function among(token: Buffer, list: string[]) {
  let found = false;
  for (const t of list) if (timingSafeEqual(token, digest(t))) found = true;
  return found;
}

export function accessOf(token: string | null, tokens: Tokens): Access {
  if (!token) throw new Unauthorized("Authentication required: send X-Auth-Token");
  const h = digest(token);
  if (among(h, tokens.write)) return "write";
  if (among(h, tokens.read)) return "read";
  throw new Unauthorized("The token is not valid for this store");
}

export function requireWrite(access: Access) {
  if (access !== "write") throw new Forbidden("This token may only read; publishing needs a write token");
}
