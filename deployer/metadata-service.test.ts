import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CompletionSignal } from "../wire/signal.ts";
import { metadataHandler, newToken, PORT_FILE, serveMetadata, tokenHash } from "./metadata-service.ts";
import { StateDb } from "./state.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Two nodes configuring at serial 1, each with its own token and metadata. */
function setup(options: { writer?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "ooo-mds-test-"));
  dirs.push(dir);
  const db = StateDb.open(dir);
  const tokens: Record<string, string> = {};
  for (const name of ["web-0", "web-1"]) {
    db.createNode({ name, role: "web", idx: Number(name.at(-1)), pool: "local", driver: "qemu", size: { memoryMiB: 512, cpus: 1 } });
    tokens[name] = newToken();
    const metadata = JSON.stringify({ ooo: { node: name, serial: 1 }, greeting: { name } });
    for (const to of ["writing-image", "powering-on", "booting", "configuring"] as const) db.transition(name, to);
    db.update(name, { token_hash: tokenHash(tokens[name]!), serial: 1, metadata });
  }
  // As the daemon runs it: its writes through a connection that never waits inside a call.
  const handle = metadataHandler({ db, ...(options.writer ? { writer: StateDb.open(dir, { busyTimeoutMs: 0 }) } : {}) });
  const call = (method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}) =>
    handle(
      new Request(`http://10.0.2.100${path}`, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}), ...headers },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      }),
    );
  return { dir, db, tokens, call };
}

function signal(node: string, serial: number, status: "SUCCESS" | "FAILURE"): CompletionSignal {
  return {
    version: 1,
    status,
    reason: status === "SUCCESS" ? "configured: 2 scripts in 1.0s" : "configure.d/50-ooo-demo failed with status 3",
    data: {
      deploy_stdout: "",
      deploy_stderr: "ooo-demo: asked to fail\n",
      deploy_status_code: status === "SUCCESS" ? 0 : 3,
      ...(status === "FAILURE" ? { failed_script: "configure.d/50-ooo-demo", output_tail: "ooo-demo: asked to fail" } : {}),
      timings: { "configure.d/20-os-apply-config": 0.5 },
    },
    id: `${node}:${serial}`,
    metadata_serial: serial,
  };
}

describe("metadata service", () => {
  test("a node reads its own metadata with its own token", async () => {
    const { call, tokens } = setup();
    const r = await call("GET", "/v1/nodes/web-0/metadata", tokens["web-0"]);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(((await r.json()) as { greeting: { name: string } }).greeting.name).toBe("web-0");
  });

  test.each([
    ["no token", "web-0", undefined, 401],
    ["a made-up token", "web-0", "not-a-token", 401],
    ["another node's token", "web-0", "web-1", 403],
    ["a node that is not there, with a good token", "web-9", "web-0", 403],
  ])("refused: %s", async (_, node, who, status) => {
    const { call, tokens } = setup();
    const token = who === undefined ? undefined : (tokens[who] ?? who);
    const r = await call("GET", `/v1/nodes/${node}/metadata`, token);
    expect(r.status).toBe(status);
    const text = await r.text();
    expect(text).not.toContain("greeting");
    // Signals are guarded the same way.
    const s = await call("POST", `/v1/nodes/${node}/signal`, token, signal(node, 1, "SUCCESS"));
    expect(s.status).toBe(status);
  });

  test("ETag and If-None-Match; the first GET of a serial is recorded once", async () => {
    const { call, tokens, db } = setup();
    const first = await call("GET", "/v1/nodes/web-0/metadata", tokens["web-0"]);
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"1-[0-9a-f]{16}"$/);
    const again = await call("GET", "/v1/nodes/web-0/metadata", tokens["web-0"], undefined, { "if-none-match": etag });
    expect(again.status).toBe(304);
    await call("GET", "/v1/nodes/web-0/metadata", tokens["web-0"]);
    expect(db.events({ node: "web-0" }).filter((e) => e.kind === "metadata-collected")).toHaveLength(1);
    expect(db.node("web-0")!.collected_serial).toBe(1);
    // A new serial is a new document.
    db.update("web-0", { serial: 2, metadata: JSON.stringify({ ooo: { serial: 2 } }) });
    const changed = await call("GET", "/v1/nodes/web-0/metadata", tokens["web-0"], undefined, { "if-none-match": etag });
    expect(changed.status).toBe(200);
    expect(db.events({ node: "web-0" }).filter((e) => e.kind === "metadata-collected")).toHaveLength(2);
  });

  test("a SUCCESS signal for the current serial makes the node active", async () => {
    const { call, tokens, db } = setup();
    expect((await call("POST", "/v1/nodes/web-0/signal", tokens["web-0"], signal("web-0", 1, "SUCCESS"))).status).toBe(204);
    const n = db.node("web-0")!;
    expect(n.state).toBe("active");
    expect(n.signalled_serial).toBe(1);
    expect(db.signal("web-0", 1)!.status).toBe("SUCCESS");
    expect(db.events({ node: "web-0" }).find((e) => e.kind === "signalled")!.detail).toMatchObject({ serial: 1, status: "SUCCESS" });
    expect(db.node("web-1")!.state).toBe("configuring");
  });

  test("while ooo deploy holds the write lock, a signal waits for it and the other nodes' polls are answered meanwhile", async () => {
    const { call, tokens, db, dir } = setup({ writer: true });
    const etag = (await call("GET", "/v1/nodes/web-1/metadata", tokens["web-1"])).headers.get("etag")!;
    const deployer = new Database(join(dir, "state.db"));
    deployer.exec("BEGIN IMMEDIATE");
    const signalled = call("POST", "/v1/nodes/web-0/signal", tokens["web-0"], signal("web-0", 1, "SUCCESS"));
    let answered = false;
    void signalled.then(() => (answered = true));
    const polls = await Promise.all(Array.from({ length: 20 }, () => call("GET", "/v1/nodes/web-1/metadata", tokens["web-1"], undefined, { "if-none-match": etag })));
    expect(polls.map((r) => r.status)).toEqual(Array(20).fill(304));
    await Bun.sleep(100);
    expect(answered).toBe(false);
    deployer.exec("COMMIT");
    expect((await signalled).status).toBe(204);
    expect(db.node("web-0")!.state).toBe("active");
    deployer.close();
  });

  test("a FAILURE signal fails the node with the script's name and output", async () => {
    const { call, tokens, db } = setup();
    await call("POST", "/v1/nodes/web-1/signal", tokens["web-1"], signal("web-1", 1, "FAILURE"));
    const n = db.node("web-1")!;
    expect(n.state).toBe("failed");
    expect(n.error).toBe("configure.d/50-ooo-demo failed (exit 3):\nooo-demo: asked to fail");
    // The agent retries at its next poll; a later success (the same serial) wins.
    await call("POST", "/v1/nodes/web-1/signal", tokens["web-1"], signal("web-1", 1, "SUCCESS"));
    expect(db.node("web-1")!.state).toBe("active");
    expect(db.node("web-1")!.error).toBeNull();
  });

  test("a signal for an older serial is kept but moves nothing", async () => {
    const { call, tokens, db } = setup();
    db.update("web-0", { serial: 2 });
    expect((await call("POST", "/v1/nodes/web-0/signal", tokens["web-0"], signal("web-0", 1, "FAILURE"))).status).toBe(204);
    expect(db.node("web-0")!.state).toBe("configuring");
    expect(db.signal("web-0", 1)!.status).toBe("FAILURE");
    expect(db.events({ node: "web-0" }).at(-1)!.kind).toBe("signal-ignored");
  });

  test("progress reports are kept as events, and guarded like the rest", async () => {
    const { call, tokens, db } = setup();
    const report = { version: 1, node: "web-0", to: `sha256:${"c".repeat(64)}`, phase: "fetching", bytes_done: 10, bytes_total: 100, at: 1.5 };
    expect((await call("POST", "/v1/nodes/web-0/progress", tokens["web-0"], report)).status).toBe(204);
    expect((await call("POST", "/v1/nodes/web-0/progress", tokens["web-1"], report)).status).toBe(403);
    expect((await call("POST", "/v1/nodes/web-0/progress", tokens["web-0"], { phase: "nope" })).status).toBe(400);
    expect(db.events({ node: "web-0" }).filter((e) => e.kind === "progress").map((e) => e.detail)).toEqual([
      { phase: "fetching", to: report.to, bytes_done: 10, bytes_total: 100, node_seconds: 1.5 },
    ]);
    expect(db.node("web-0")!.state).toBe("configuring");
  });

  test.each([
    ["not JSON", "{", 400],
    ["not a signal", { status: "DONE" }, 400],
  ])("a bad signal body: %s", async (_, body, status) => {
    const { call, tokens } = setup();
    expect((await call("POST", "/v1/nodes/web-0/signal", tokens["web-0"], body)).status).toBe(status);
  });

  test("limits: a burst of progress reports beyond what an upgrade sends gets 429, per node; an upgrade's pace is never refused", async () => {
    const { call, tokens, db } = setup();
    const report = (n: number) => ({ version: 1, node: "web-0", to: `sha256:${"c".repeat(64)}`, phase: "fetching", bytes_done: n, at: n });
    const statuses: number[] = [];
    for (let i = 0; i < 320; i++) statuses.push((await call("POST", "/v1/nodes/web-0/progress", tokens["web-0"], report(i))).status);
    expect(statuses.slice(0, 300).every((s) => s === 204)).toBe(true);
    expect(statuses.slice(300).every((s) => s === 429)).toBe(true);
    const refused = await call("POST", "/v1/nodes/web-0/progress", tokens["web-0"], report(999));
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/too many progress posts from web-0/);
    expect(db.events({ node: "web-0" }).filter((e) => e.kind === "progress")).toHaveLength(300);
    // Another node has its own allowance.
    expect((await call("POST", "/v1/nodes/web-1/progress", tokens["web-1"], { ...report(1), node: "web-1" })).status).toBe(204);
  });

  test("limits: signals beyond 30 at once get 429; a body over 2 MiB gets 413; a serial never given gets 409 and is not kept", async () => {
    const { call, tokens, db } = setup();
    const big = { ...signal("web-0", 1, "FAILURE"), reason: "x".repeat(3 << 20) };
    const tooBig = await call("POST", "/v1/nodes/web-0/signal", tokens["web-0"], big);
    expect(tooBig.status).toBe(413);
    expect(await tooBig.text()).toMatch(/at most 2097152 bytes/);
    const future = await call("POST", "/v1/nodes/web-0/signal", tokens["web-0"], signal("web-0", 99, "SUCCESS"));
    expect(future.status).toBe(409);
    expect(db.signal("web-0", 99)).toBeFalsy();
    const statuses: number[] = [];
    for (let i = 0; i < 35; i++) statuses.push((await call("POST", "/v1/nodes/web-1/signal", tokens["web-1"], signal("web-1", 1, "FAILURE"))).status);
    expect(statuses.filter((s) => s === 204)).toHaveLength(30);
    expect(statuses.slice(30)).toEqual([429, 429, 429, 429, 429]);
  });

  test("served on loopback, its port published; stops when told", async () => {
    const { dir, db, tokens } = setup();
    db.close();
    const stop = new AbortController();
    const running = serveMetadata(dir, { stop: stop.signal });
    let port = 0;
    for (let i = 0; i < 100 && !port; i++, await Bun.sleep(20)) port = existsSync(join(dir, PORT_FILE)) ? Number(readFileSync(join(dir, PORT_FILE), "utf8")) : 0;
    const r = await fetch(`http://127.0.0.1:${port}/v1/nodes/web-1/metadata`, { headers: { authorization: `Bearer ${tokens["web-1"]}` } });
    expect(r.status).toBe(200);
    expect(((await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { stateDir: string }).stateDir).toBe(dir);
    stop.abort();
    await running;
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
