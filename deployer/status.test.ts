import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
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
