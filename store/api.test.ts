import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApi, routes } from "./api.ts";
import { DirBackend } from "./backends/dir.ts";
import type { ImageRecord } from "./image.ts";
import { Store } from "./store.ts";

/**
 * Writes are denied by default: every route of the table that is not a GET
 * refuses a read token with 403 — before its handler runs, so nothing
 * changes — and takes a write token. The routes come from the table itself,
 * so a route added later is covered without touching this test.
 */
const tokens = { write: ["write-token-0123456789"], read: ["read-token-0123456789"] };
let dir: string;
let store: Store;
let api: (req: Request) => Promise<Response>;
let image: ImageRecord;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ooo-store-api-"));
  store = await Store.open({ dir, backend: new DirBackend(join(dir, "blobs")) });
  api = createApi(store, { tokens });
  image = await store.create({ name: "guarded", disk_format: "raw", container_format: "bare", tags: ["t"] });
});
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const all = () => routes(store).map(([method, pattern]) => ({ method, pattern }));
const writes = () => all().filter((r) => r.method !== "GET");
/** A concrete path for a route: the guarded image, its tag, a well-formed digest. */
const pathOf = (pattern: string) =>
  pattern.replace(":id", image.id).replace(":tag", "t").replace(":digest", `sha256:${"ab".repeat(32)}`);
const call = (method: string, pattern: string, token?: string) =>
  api(
    new Request(`http://store${pathOf(pattern)}`, {
      method,
      headers: { ...(token ? { "X-Auth-Token": token } : {}), "Content-Type": "application/json" },
      body: method === "GET" || method === "HEAD" ? undefined : "{}",
    }),
  );

/** Refused for the token's sake (a handler may answer 403 for its own reasons, e.g. deactivating a queued image). */
const READ_ONLY = "This token may only read";
async function outcome(res: Response): Promise<string> {
  const message = res.status === 403 ? ((await res.json()) as { error: { message: string } }).error.message : "";
  return res.status === 403 && message.startsWith(READ_ONLY) ? "read-only" : res.status === 401 ? "unauthorized" : "passed";
}

test("the table has write routes of every kind (so the checks below check something)", () => {
  expect(new Set(writes().map((r) => r.method))).toEqual(new Set(["POST", "PUT", "PATCH", "DELETE"]));
  expect(writes().length).toBeGreaterThanOrEqual(10);
});

test("a read token gets 403 on every write, and nothing changes", async () => {
  const before = store.get(image.id);
  const refused = [];
  for (const { method, pattern } of writes()) refused.push([method, pattern, await outcome(await call(method, pattern, tokens.read[0]))]);
  expect(refused).toEqual(writes().map(({ method, pattern }) => [method, pattern, "read-only"]));
  expect(store.get(image.id)).toEqual(before);
});

test("no token gets 401 on every route", async () => {
  for (const { method, pattern } of all()) expect([method, pattern, (await call(method, pattern)).status]).toEqual([method, pattern, 401]);
});

test("a read token reads: no GET or HEAD is refused", async () => {
  for (const { pattern } of all().filter((r) => r.method === "GET"))
    for (const method of ["GET", "HEAD"]) expect([method, pattern, await outcome(await call(method, pattern, tokens.read[0]))]).toEqual([method, pattern, "passed"]);
});

test("a write token passes the check on every write (the handler answers, whatever it says)", async () => {
  // DELETE of the image itself last: the other writes need it.
  const order = writes().sort((a, b) => Number(a.method === "DELETE" && a.pattern === "/v2/images/:id") - Number(b.method === "DELETE" && b.pattern === "/v2/images/:id"));
  for (const { method, pattern } of order) {
    expect([method, pattern, await outcome(await call(method, pattern, tokens.write[0]))]).toEqual([method, pattern, "passed"]);
  }
});
