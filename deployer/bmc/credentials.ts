import { readFileSync, statSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";
import { BmcCredentialsUnusable } from "../errors.ts";

/**
 * A BMC's login, kept in a file of its own (`{username, password}`, YAML or
 * JSON), readable by its owner only: the password is a key to the machine
 * and never appears on a command line, in the environment, a log or an
 * error — ipmitool reads it from its stdin (`-f /dev/stdin`), Redfish gets
 * it in an Authorization header.
 */
export const BmcLogin = z.strictObject({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(128),
});
export type BmcLogin = z.infer<typeof BmcLogin>;

/** `what` names the login in errors: a BMC's (default), or Ironic's http_basic one. */
export function readBmcLogin(file: string, what = "BMC"): BmcLogin {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (e) {
    throw new BmcCredentialsUnusable(file, (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message, what);
  }
  if (mode & 0o077) throw new BmcCredentialsUnusable(file, `its mode is ${(mode & 0o777).toString(8)}: a file holding a password must be readable by its owner only (chmod 600)`, what);
  let value: unknown;
  try {
    value = parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new BmcCredentialsUnusable(file, `not YAML (${(e as Error).message.split("\n")[0]})`, what);
  }
  const parsed = BmcLogin.safeParse(value);
  // The issues name keys, never values: a value may be the password.
  if (!parsed.success) throw new BmcCredentialsUnusable(file, `must hold username and password only (${parsed.error.issues.map((i) => `${i.path.join(".") || "the file"}: ${i.code}`).join("; ")})`, what);
  return parsed.data;
}
