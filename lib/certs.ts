import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { run } from "./run.ts";
import type { TlsFiles } from "./tls.ts";

/**
 * A small certificate authority and the server certificates it signs, made
 * with the openssl CLI (node:crypto makes keys but no X.509): EC P-256
 * keys, private keys 0600 in a 0700 folder, never on a command line.
 */
const P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

export interface CaFiles extends TlsFiles {}

/** DN values are the CA's label: keep them to what a subject may hold without escaping. */
const subject = (cn: string) => `/CN=${cn.replace(/[^A-Za-z0-9 ._-]/g, "-")}`;

/** A CA in `dir` (ca.pem, ca.key), made once. */
export async function ensureCa(dir: string, name: string): Promise<CaFiles> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const ca = { cert: join(dir, "ca.pem"), key: join(dir, "ca.key") };
  if (existsSync(ca.cert) && existsSync(ca.key)) return ca;
  rmSync(ca.cert, { force: true });
  await run("openssl", ["req", "-x509", ...P256, "-keyout", ca.key, "-out", ca.cert, "-days", "3650", "-subj", subject(name),
    "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], { what: "making the CA", echo: false });
  chmodSync(ca.key, 0o600);
  return ca;
}

/**
 * A server certificate for `hosts` (names and IP addresses), signed by the
 * CA, in `dir` as NAME.pem and NAME.key; made again when the hosts change.
 */
export async function ensureServerCert(ca: CaFiles, dir: string, name: string, hosts: string[]): Promise<TlsFiles> {
  const files = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  const wanted = [...new Set(hosts)].sort();
  const san = wanted.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
  const hostsFile = join(dir, `${name}.hosts`);
  if (existsSync(files.cert) && existsSync(files.key) && existsSync(hostsFile) && readFileSync(hostsFile, "utf8") === san) return files;
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=${san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
  try {
    await run("openssl", ["req", "-new", ...P256, "-keyout", files.key, "-out", csr, "-subj", subject(name)], { what: `making ${name}'s key`, echo: false });
    chmodSync(files.key, 0o600);
    await run("openssl", ["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-days", "825", "-extfile", ext, "-out", files.cert], {
      what: `signing ${name}'s certificate`,
      echo: false,
    });
  } finally {
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
  }
  writeFileSync(hostsFile, san);
  return files;
}
