import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureCa, ensureServerCert } from "../../lib/certs.ts";
import { StoreClient } from "../../store/client/client.ts";
import { downloadImage } from "../../store/client/download.ts";
import { StoreUnreachable } from "../../store/client/errors.ts";
import { loadStoreConfig } from "../../store/config.ts";
import { requireCommand } from "../support/require.ts";
import { noise, READ_TOKEN, REPO, startStore, type TestStore, WRITE_TOKEN } from "../support/store.ts";

/**
 * `ooo store serve --tls-cert/--tls-key`: ooo's clients verify the store's
 * certificate always — with the CA given by --ca-file or OOO_STORE_CA, never
 * by skipping the check — Debian's glance CLI works against it with
 * --os-cacert, and plain http is refused off loopback unless asked for.
 */
let s: TestStore;
let dir: string;
let ca: string;

beforeAll(async () => {
  requireCommand("openssl", "glance");
  dir = mkdtempSync(join(tmpdir(), "ooo-store-tls-"));
  const authority = await ensureCa(join(dir, "ca"), "ooo test CA");
  const server = await ensureServerCert(authority, join(dir, "ca"), "store", ["127.0.0.1", "localhost"]);
  ca = authority.cert;
  s = await startStore({ tls: { ...server, ca } });
}, 60_000);
afterAll(async () => {
  await s?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function ooo(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawn(["bun", join(REPO, "cli/ooo.ts"), ...args], { env: { ...process.env, NO_COLOR: "1", OOO_STORE_CA: "", ...env }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = [await new Response(p.stdout).text(), await new Response(p.stderr).text(), await p.exited];
  return { out, err, code };
}

describe("the store over https", () => {
  test("a client with the CA uploads and downloads; one without it is refused, and told what to give", async () => {
    expect(s.url).toStartWith("https://");
    const data = noise(3 << 20, 9);
    const image = await s.client.createImage({ name: "tls", disk_format: "raw", container_format: "bare" });
    await s.client.uploadData(image.id, data);
    const out = join(dir, "out.raw");
    await downloadImage(s.reader, await s.reader.getImage(image.id), out);
    expect(createHash("sha256").update(readFileSync(out)).digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));

    const blind = new StoreClient({ url: s.url, token: READ_TOKEN });
    const e = await blind.getImage(image.id).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StoreUnreachable);
    expect((e as StoreUnreachable).hint).toContain("OOO_STORE_CA");
  });

  test("ooo commands trust the CA from OOO_STORE_CA or --ca-file, and nothing else", async () => {
    const env = { OOO_STORE_URL: s.url, OOO_STORE_TOKEN: READ_TOKEN };
    expect((await ooo(["store", "list", "--all"], { ...env, OOO_STORE_CA: ca })).code).toBe(0);
    expect((await ooo(["store", "list", "--all", "--ca-file", ca], env)).code).toBe(0);
    const refused = await ooo(["store", "list", "--all"], env);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain("cannot reach the image store");
  }, 30_000);

  test("glance --os-cacert CA image-list works against it; without the CA it does not", async () => {
    const home = join(dir, "home");
    // python-requests lets these override the session's CA (--os-cacert): a glance user sets neither.
    const { REQUESTS_CA_BUNDLE: _r, CURL_CA_BUNDLE: _c, OS_CACERT: _o, ...env } = process.env;
    const glance = (args: string[]) =>
      Bun.spawnSync(["glance", "--os-image-url", s.url, "--os-auth-token", WRITE_TOKEN, ...args, "image-list"], {
        env: { ...env, HOME: home, OS_AUTH_URL: "", OS_USERNAME: "", OS_PASSWORD: "" },
        stdout: "pipe",
        stderr: "pipe",
      });
    const ok = glance(["--os-cacert", ca]);
    expect(ok.stderr.toString()).toBe("");
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout.toString()).toContain("tls");
    // Without --os-cacert, glanceclient verifies only when REQUESTS_CA_BUNDLE names CAs (else it skips
    // the check: its bug); against the system's CAs, ours is refused.
    const system = Bun.spawnSync(["glance", "--os-image-url", s.url, "--os-auth-token", WRITE_TOKEN, "image-list"], {
      env: { ...env, HOME: home, OS_AUTH_URL: "", REQUESTS_CA_BUNDLE: "/etc/ssl/certs/ca-certificates.crt" },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(system.exitCode).not.toBe(0);
    expect(system.stderr.toString()).toContain("CERTIFICATE_VERIFY_FAILED");
  }, 60_000);

  test("plain http is refused on an address that is not loopback, unless asked for", () => {
    const config = join(dir, "plain.yaml");
    writeFileSync(config, `dir: ${join(dir, "plain")}\nlisten: 0.0.0.0:9299\n`);
    const env = { OOO_STORE_WRITE_TOKEN: WRITE_TOKEN };
    expect(() => loadStoreConfig({ file: config, env })).toThrow(/plain http: tokens and images would cross the network in clear/);
    expect(loadStoreConfig({ file: config, env, flags: { plainHttp: true } }).plainHttp).toBe(true);
    expect(loadStoreConfig({ file: config, env, flags: { tls: { cert: "c.pem", key: "k.pem" } } }).tls).toEqual({ cert: "c.pem", key: "k.pem" });
  });
});
