import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureCa, ensureServerCert } from "../lib/certs.ts";
import { serverTls } from "../lib/tls.ts";
import { requireCommand } from "../test/support/require.ts";
import { heat } from "./collectors/heat.ts";
import { SourceNotAvailable } from "./errors.ts";
import { parseJson } from "./pyjson/parse.ts";
import { sendSignal } from "./refresh/signal.ts";
import { caBundleFile, keepNodeTrust, nodeFetchTls, readNodeTrust, trustEnv } from "./trust.ts";

/**
 * A node trusts the CA its config drive names, for the metadata service (the
 * heat collector, the completion signal) and, through its children's
 * environment, for the store and every other request — and nothing the
 * drive did not name.
 */
let dir: string;
let ca: string;
let server: ReturnType<typeof Bun.serve>;
const posted: string[] = [];
const saved = process.env.OOO_RUN_DIR;

beforeAll(async () => {
  requireCommand("openssl");
  dir = mkdtempSync(join(tmpdir(), "ooo-agent-trust-"));
  const authority = await ensureCa(join(dir, "ca"), "test stack CA");
  const cert = await ensureServerCert(authority, join(dir, "ca"), "services", ["127.0.0.1"]);
  ca = readFileSync(authority.cert, "utf8");
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: serverTls(cert),
    fetch: async (req) => {
      if (req.method === "POST") {
        posted.push(await req.text());
        return new Response(null, { status: 204 });
      }
      return Response.json({ ooo: { version: 1, node: "web-0", role: "web", serial: 1, image: { name: "kv", digest: `sha256:${"0".repeat(64)}` }, signal_url: "https://127.0.0.1/x" } });
    },
  });
  process.env.OOO_RUN_DIR = join(dir, "run");
}, 30_000);
afterAll(() => {
  server?.stop(true);
  if (saved === undefined) delete process.env.OOO_RUN_DIR;
  else process.env.OOO_RUN_DIR = saved;
  rmSync(dir, { recursive: true, force: true });
});

const ctx = () => ({
  settings: { metadata_url: [`https://127.0.0.1:${server.port}`], node: ["web-0"], token: ["t"] },
  cachedir: join(dir, "cache"),
  deploymentKeys: ["deployments"],
  signal: AbortSignal.timeout(5000),
  memo: {},
});
const signal = { version: 1, status: "SUCCESS", reason: "ok", data: { deploy_stdout: "", deploy_stderr: "", deploy_status_code: 0 }, id: "web-0:1" } as const;

describe("the node's trust", () => {
  test("before the drive named a CA, the stack's https services are refused", async () => {
    await expect(heat.collect(ctx())).rejects.toBeInstanceOf(SourceNotAvailable);
    await expect(sendSignal({ url: `https://127.0.0.1:${server.port}/s`, node: "web-0" }, signal, { attempts: 1, backoffMs: 0, timeoutMs: 5000 })).rejects.toThrow(/certificate/);
    expect(trustEnv({ PATH: "/bin" })).toEqual({ PATH: "/bin" });
  });

  test("the drive's CA is kept, and the heat collector and the signal trust it; the children get it in their environment", async () => {
    const drive = parseJson(JSON.stringify({ ooo_trust: { keys: [], ca } }));
    expect(keepNodeTrust(drive)).toEqual({ keys: [], ca });
    expect(readNodeTrust()).toEqual({ keys: [], ca });
    expect(nodeFetchTls().tls?.ca).toStartWith(ca.trim());
    const [[name]] = (await heat.collect(ctx())) as [[string, unknown]];
    expect(name).toBe("heat");
    await sendSignal({ url: `https://127.0.0.1:${server.port}/s`, node: "web-0" }, signal, { attempts: 1, backoffMs: 0, timeoutMs: 5000 });
    expect(posted).toHaveLength(1);
    expect(trustEnv({})).toEqual({ OOO_STORE_CA: caBundleFile(), NODE_EXTRA_CA_CERTS: caBundleFile() });
    // A child (the takeover's fetches) trusts it through NODE_EXTRA_CA_CERTS.
    const child = Bun.spawn(["bun", "-e", `const r = await fetch("https://127.0.0.1:${server.port}/m"); process.exit(r.ok ? 0 : 1)`], {
      env: { ...process.env, ...trustEnv({}) },
      stderr: "pipe",
    });
    expect([await child.exited, await new Response(child.stderr).text()]).toEqual([0, ""]);
  });
});
