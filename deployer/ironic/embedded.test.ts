import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureCa, ensureServerCert } from "../../lib/certs.ts";
import { requireCommand } from "../../test/support/require.ts";
import { daemonPid } from "../daemons.ts";
import { IronicClient } from "./client.ts";
import { waitForProvisionState } from "./wait.ts";
import { embeddedIronicFiles, embeddedIronicUrl, ensureEmbeddedIronic, stopEmbeddedIronic, type EmbeddedIronic } from "./embedded.ts";

/**
 * The embedded Ironic from Debian's packages, started for real (about 3 s):
 * its files and their modes, its login, what a restart keeps, https once
 * the stack has a CA, and that the password shows up nowhere but its two
 * 0600 files.
 */
let stateDir: string;
let files: ReturnType<typeof embeddedIronicFiles>;

beforeAll(() => {
  requireCommand("ironic", "ironic-dbsync", "genisoimage");
  stateDir = mkdtempSync(join(tmpdir(), "ooo-ironic-"));
  files = embeddedIronicFiles(stateDir);
});

afterAll(async () => {
  if (stateDir) await stopEmbeddedIronic(stateDir);
  rmSync(stateDir, { recursive: true, force: true });
});

const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` });
const api = (i: EmbeddedIronic, path: string, init: RequestInit = {}, login = basic(i.username, i.password)) =>
  fetch(`${i.url}${path}`, { ...init, headers: { ...login, "X-OpenStack-Ironic-API-Version": "1.82", "Content-Type": "application/json" }, ...(i.ca ? { tls: { ca: i.ca } } : {}) });
const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);

test("starts from Debian's packages: SQLite, http_basic with a generated password kept 0600, no message bus, on loopback", async () => {
  const started = Date.now();
  const ironic = await ensureEmbeddedIronic(stateDir);
  const seconds = (Date.now() - started) / 1000;
  expect(seconds).toBeLessThan(30);
  expect(ironic.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(embeddedIronicUrl(stateDir)).toBe(ironic.url);
  expect(existsSync(files.database)).toBe(true);
  expect([mode(files.dir), mode(files.login), mode(files.htpasswd), mode(files.conf)]).toEqual(["700", "600", "600", "600"]);
  const htpasswd = readFileSync(files.htpasswd, "utf8");
  expect(htpasswd).toMatch(/^ooo:\$2b\$04\$/);
  expect(htpasswd).not.toContain(ironic.password);
  expect(ironic.password.length).toBeGreaterThanOrEqual(40);
  const conf = readFileSync(files.conf, "utf8");
  for (const line of ["rpc_transport = none", "auth_strategy = http_basic", "enabled_hardware_types = ipmi,redfish,fake-hardware,manual-management", "default_network_interface = noop", `endpoint_override = ${ironic.url}`])
    expect(conf).toContain(line);

  // Ironic itself answers: only with the login.
  expect((await api(ironic, "/v1/nodes", {}, {} as ReturnType<typeof basic>)).status).toBe(401);
  expect((await api(ironic, "/v1/nodes", {}, basic("ooo", "not-the-password"))).status).toBe(401);
  const nodes = await api(ironic, "/v1/nodes");
  expect(nodes.status).toBe(200);
  expect(await nodes.json()).toEqual({ nodes: [] });
  const drivers = (await (await api(ironic, "/v1/drivers")).json()) as { drivers: { name: string }[] };
  expect(drivers.drivers.map((d) => d.name).sort()).toEqual(["fake-hardware", "ipmi", "manual-management", "redfish"]);

  // The password is in its two files only: not on the daemon's command line, in its environment or its log.
  const pid = daemonPid(files.daemon)!;
  for (const f of [`/proc/${pid}/cmdline`, `/proc/${pid}/environ`, files.log]) expect(readFileSync(f, "latin1")).not.toContain(ironic.password);
}, 60_000);

test("a BMC password given to Ironic stays out of its log (its cleaning logs whole nodes at INFO: quieted)", async () => {
  const ironic = await ensureEmbeddedIronic(stateDir);
  const client = new IronicClient({ url: ironic.url, login: { username: ironic.username, password: ironic.password } });
  await client.createNode({ name: "secret", driver: "fake-hardware", driver_info: { ipmi_password: "bmc-password-in-driver-info" } });
  for (const [verb, state] of [["manage", "manageable"], ["provide", "available"]] as const) {
    await client.setProvisionState("secret", verb);
    await waitForProvisionState(client, "secret", state, { timeoutMs: 30_000, intervalMs: 200 });
  }
  const log = readFileSync(files.log, "utf8");
  expect(log).toContain("Node"); // it logs
  expect(log).not.toContain("bmc-password-in-driver-info");
  await client.deleteNode("secret");
}, 60_000);

test("a second ensure leaves it running; a stop ends it; a restart keeps its database and password", async () => {
  const ironic = await ensureEmbeddedIronic(stateDir);
  const pid = daemonPid(files.daemon);
  const created = await api(ironic, "/v1/nodes", { method: "POST", body: JSON.stringify({ name: "kept", driver: "fake-hardware" }) });
  expect(created.status).toBe(201);

  const again = Date.now();
  expect(await ensureEmbeddedIronic(stateDir)).toEqual(ironic);
  expect(Date.now() - again).toBeLessThan(1_000);
  expect(daemonPid(files.daemon)).toBe(pid);

  expect(await stopEmbeddedIronic(stateDir)).toBe(true);
  expect(daemonPid(files.daemon)).toBeUndefined();
  // Ended: gone, or a zombie until this process (its parent) reaps it.
  expect(!existsSync(`/proc/${pid}`) || /^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"))).toBe(true);
  expect(await stopEmbeddedIronic(stateDir)).toBe(false);

  const restarted = await ensureEmbeddedIronic(stateDir);
  expect(restarted.password).toBe(ironic.password);
  expect(daemonPid(files.daemon)).not.toBe(pid);
  const node = (await (await api(restarted, "/v1/nodes/kept")).json()) as { name: string; provision_state: string };
  expect(node).toMatchObject({ name: "kept", provision_state: "enroll" });
}, 60_000);

test("https with the stack's certificate once the stack has a CA (restarted: its configuration changed)", async () => {
  const before = await ensureEmbeddedIronic(stateDir);
  const tlsDir = join(stateDir, "tls");
  const ca = await ensureCa(tlsDir, "ooo test CA");
  await ensureServerCert(ca, tlsDir, "services", ["127.0.0.1", "localhost"]);
  const ironic = await ensureEmbeddedIronic(stateDir);
  expect(ironic.url).toBe(before.url.replace("http:", "https:"));
  expect(ironic.ca).toBe(readFileSync(ca.cert, "utf8"));
  expect((await api(ironic, "/v1/nodes/kept")).status).toBe(200);
  // Plain http is not answered any more, and an unknown CA is refused.
  expect(await fetch(`${before.url}/v1`).then(() => "answered", () => "refused")).toBe("refused");
  expect(await fetch(`${ironic.url}/v1`).then(() => "answered", () => "refused")).toBe("refused");
  expect(readFileSync(files.conf, "utf8")).toContain(`webserver_verify_ca = ${ca.cert}`);
}, 60_000);
