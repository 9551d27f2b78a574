import { readFileSync, statSync, writeFileSync } from "node:fs";
import { z } from "zod";

/**
 * A BMC's login, kept in a file of its own (mode 0600) and never on a
 * command line: `{ "username": …, "password": … }`. Both BMC fronts of the
 * test bed read it; clients (ipmitool, sushy) get the password through the
 * environment. IPMI 2.0 allows 16-byte user names and 20-byte passwords;
 * ipmi_sim's lan.conf quotes them, so quotes, backslashes and blanks are out.
 */
const Word = z.string().regex(/^[!#-[\]-~]+$/, "printable ASCII without blanks, quotes or backslashes");
export const BmcCredentials = z.object({
  username: Word.max(16),
  password: Word.min(8).max(20),
});
export type BmcCredentials = z.output<typeof BmcCredentials>;

export function writeCredentials(file: string, c: BmcCredentials) {
  writeFileSync(file, JSON.stringify(BmcCredentials.parse(c)) + "\n", { mode: 0o600 });
}

export function readCredentials(file: string): BmcCredentials {
  if (statSync(file).mode & 0o077) throw new Error(`${file}: a BMC credentials file must be readable by its owner only (chmod 600)`);
  const parsed = BmcCredentials.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!parsed.success) throw new Error(`${file}: not BMC credentials: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return parsed.data;
}

/** A fresh random password that fits IPMI's 20 bytes. */
export function randomPassword() {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(12))).toString("base64url").slice(0, 16);
}
