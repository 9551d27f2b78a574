import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StateDb } from "./state.ts";
import { stackStatus, statusText } from "./status.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

test("ooo status says which nodes run images not verified against a trusted key", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ooo-status-"));
  dirs.push(dir);
  const db = StateDb.open(dir);
  const [signed, unsigned] = [`sha256:${"a".repeat(64)}`, `sha256:${"b".repeat(64)}`];
  for (const [name, digest] of [["web-0", signed], ["web-1", unsigned], ["web-2", signed]] as const) {
    db.createNode({ name, role: "web", idx: Number(name.at(-1)), pool: "local", driver: "qemu", size: { memoryMiB: 512, cpus: 1 } });
    db.update(name, { image_name: "kv", image_digest: digest });
  }
  db.noteSigner(signed, { name: "ci.pub", id: "0123456789ABCDEF" });
  db.close();
  const s = await stackStatus(dir);
  expect(s.nodes.map((n) => [n.node, n.signer?.id])).toEqual([
    ["web-0", "0123456789ABCDEF"],
    ["web-1", undefined],
    ["web-2", "0123456789ABCDEF"],
  ]);
  const text = statusText(s);
  expect(text).toMatch(/web-0 .* ci\.pub \(0123456789ABCDEF\)/);
  expect(text).toMatch(/web-1 .* UNVERIFIED/);
  expect(text).toContain("web-1 runs images not verified against a trusted key");
});

test("ooo status of bare-metal nodes: one without a machine is off; one whose BMC does not answer is shown with its power unknown, the rest as they are", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ooo-status-"));
  dirs.push(dir);
  const db = StateDb.open(dir);
  const credentials = join(dir, "bmc.yaml");
  writeFileSync(credentials, "username: admin\npassword: secret-password\n", { mode: 0o600 });
  // Port 9 on loopback: nothing answers there.
  const pool = { driver: "ipmi", standby: false, machines: { m1: { bmc: { address: "127.0.0.1:9", credentials }, macs: ["52:54:00:aa:00:01"], boot_mode: "bios" } } };
  db.createNode({ name: "bad-0", role: "bad", idx: 0, pool: "rack", driver: "ipmi", size: { memoryMiB: 512, cpus: 1 }, poolConfig: pool });
  db.createNode({ name: "bad-1", role: "bad", idx: 1, pool: "rack", driver: "ipmi", size: { memoryMiB: 512, cpus: 1 }, poolConfig: pool, machine: "m1" });
  db.createNode({ name: "web-0", role: "web", idx: 0, pool: "local", driver: "qemu", size: { memoryMiB: 512, cpus: 1 } });
  db.close();
  const s = await stackStatus(dir);
  const by = Object.fromEntries(s.nodes.map((n) => [n.node, n]));
  expect(by["bad-0"]).toMatchObject({ power: "off" });
  expect(by["bad-1"]!.power).toBe("unknown");
  expect(by["bad-1"]!.error).toStartWith("power state unknown: machine m1's BMC: ipmi://127.0.0.1:9");
  expect(by["bad-1"]!.error).not.toContain("secret-password");
  expect(by["web-0"]).toMatchObject({ power: "off" });
}, 60_000);
