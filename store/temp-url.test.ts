import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { log } from "../lib/log.ts";
import { publishTestImage, sha256Hex } from "../test/support/store-image.ts";
import { createApi } from "./api.ts";
import { DirBackend } from "./backends/dir.ts";
import { StoreClient } from "./client/client.ts";
import { Store } from "./store.ts";
import { MAX_TTL_SECONDS } from "./temp-url.ts";

/**
 * Signed blob URLs over real HTTP, as Ironic's conductor (HEAD) and agent
 * (GET) use them: no token, one blob of one image, until they expire or
 * the image is withdrawn; a URL changed in any part is refused; the key
 * stays in the store's folder (0600) and outlives a restart.
 */
const tokens = { write: ["write-token-0123456789"], read: ["read-token-0123456789"] };
let dir: string;
let store: Store;
let server: ReturnType<typeof Bun.serve>;
let base: string;
let reader: StoreClient;
const kernel = new TextEncoder().encode("a kernel both images boot");

function serve() {
  const api = createApi(store, { tokens });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: api });
  base = `http://127.0.0.1:${server.port}`;
  reader = new StoreClient({ url: base, token: tokens.read[0] });
}

const call = (method: string, path: string, body?: string | Uint8Array) =>
  fetch(`${base}${path}`, { method, body, headers: { "X-Auth-Token": tokens.write[0]!, "Content-Type": "application/octet-stream" } });
const publish = (name: string, seed: string) => publishTestImage(store, call, name, seed, kernel);
const message = async (res: Response) => ((await res.json()) as { error: { message: string } }).error.message;
/** The URL with one query parameter (or the path) changed. */
const altered = (url: string, change: (u: URL) => void) => {
  const u = new URL(url);
  change(u);
  return u.href;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ooo-temp-url-"));
  store = await Store.open({ dir, backend: new DirBackend(join(dir, "blobs")) });
  serve();
});
afterAll(async () => {
  await server?.stop(true);
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("signed blob URLs", () => {
  test("a read token gets one; it reads its blob with no token: GET, HEAD, a range", async () => {
    const image = await publish("kv", "one");
    const signed = await reader.tempUrl(image.id, `sha256:${image.disk}`, 600);
    expect(signed.url.startsWith(`${base}/v2/ooo/blobs/sha256:${image.disk}?`)).toBe(true);
    expect(signed.expires - Math.floor(Date.now() / 1000)).toBeWithin(598, 601);
    expect(new Date(signed.expires_at).getTime()).toBe(signed.expires * 1000);

    const got = await fetch(signed.url);
    expect(got.status).toBe(200);
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(image.diskBytes);
    const head = await fetch(signed.url, { method: "HEAD" });
    expect([head.status, head.headers.get("content-length")]).toEqual([200, String(image.diskBytes.length)]);
    const part = await fetch(signed.url, { headers: { Range: "bytes=0-3" } });
    expect([part.status, await part.text()]).toEqual([206, "disk"]);
    // An hour unless asked otherwise.
    expect((await reader.tempUrl(image.id, `sha256:${image.disk}`)).expires - Math.floor(Date.now() / 1000)).toBeWithin(3598, 3601);
  });

  test("a URL changed in any part, or used for anything but GET and HEAD, is refused", async () => {
    const a = await publish("kv", "two");
    const b = await publish("kv", "three");
    const { url } = await reader.tempUrl(a.id, `sha256:${a.disk}`, 600);
    const refused = [
      altered(url, (u) => (u.pathname = `/v2/ooo/blobs/sha256:${a.data}`)), // another blob of the same image
      altered(url, (u) => u.searchParams.set("image", b.id)), // another image
      altered(url, (u) => u.searchParams.set("temp_url_expires", String(Number(u.searchParams.get("temp_url_expires")) + 3600))), // longer
      altered(url, (u) => u.searchParams.set("temp_url_sig", "0".repeat(64))),
      altered(url, (u) => u.searchParams.set("temp_url_sig", "short")),
      altered(url, (u) => u.searchParams.delete("temp_url_expires")),
      altered(url, (u) => (u.pathname = `/v2/images/${a.id}/file`)), // not a blob route
    ];
    for (const changed of refused) expect([changed, (await fetch(changed)).status]).toEqual([changed, 401]);
    const put = await fetch(url, { method: "PUT", body: "x" });
    expect([put.status, await message(put)]).toEqual([401, "A signed URL opens only GET or HEAD of the one blob it was made for"]);
    // A token beside the signature changes nothing: the signature alone is judged.
    const withToken = await fetch(altered(url, (u) => u.searchParams.set("temp_url_sig", "0".repeat(64))), { headers: { "X-Auth-Token": tokens.write[0]! } });
    expect(withToken.status).toBe(401);
    expect((await fetch(url)).status).toBe(200);
  });

  test("expired URLs are refused, naming when they expired", async () => {
    const image = await publish("kv", "four");
    const issued = await store.tempUrls.issue(base, image.id, `sha256:${image.disk}`, "60", Date.now() - 61_000);
    const res = await fetch(issued.url);
    expect([res.status, await message(res)]).toEqual([401, `The signed URL expired at ${issued.expires_at}`]);
  });

  test("withdrawn: refused while the image is deactivated (even a blob another image shares), back on reactivation; gone with the image", async () => {
    const image = await publish("kv", "five");
    await publish("kv", "six"); // shares the kernel, and stays active
    const disk = await reader.tempUrl(image.id, `sha256:${image.disk}`, 600);
    const shared = await reader.tempUrl(image.id, `sha256:${sha256Hex(kernel)}`, 600);
    expect((await call("POST", `/v2/images/${image.id}/actions/deactivate`)).status).toBe(204);
    for (const { url } of [disk, shared]) {
      const res = await fetch(url);
      expect([res.status, await message(res)]).toEqual([403, "The requested image has been deactivated. Image data download is forbidden."]);
    }
    expect((await fetch(disk.url, { method: "HEAD" })).status).toBe(403);
    const issue = await fetch(`${base}/v2/images/${image.id}/blobs/sha256:${image.disk}/temp-url`, { headers: { "X-Auth-Token": tokens.read[0]! } });
    expect(issue.status).toBe(403);
    expect((await call("POST", `/v2/images/${image.id}/actions/reactivate`)).status).toBe(204);
    for (const { url } of [disk, shared]) expect((await fetch(url)).status).toBe(200);
    expect((await call("DELETE", `/v2/images/${image.id}`)).status).toBe(204);
    expect((await fetch(disk.url)).status).toBe(404);
  });

  test("issued only for a blob the image refers to, for a sane time, to a token", async () => {
    const image = await publish("kv", "seven");
    const other = await publish("kv", "eight");
    const ask = (path: string, token: string | null = tokens.read[0]!) => fetch(`${base}${path}`, { headers: token ? { "X-Auth-Token": token } : {} });
    const blob = `/v2/images/${image.id}/blobs/sha256:${image.disk}/temp-url`;
    const foreign = await ask(`/v2/images/${image.id}/blobs/sha256:${other.disk}/temp-url`);
    expect([foreign.status, await message(foreign)]).toEqual([403, `Image ${image.id} does not refer to blob sha256:${other.disk}`]);
    for (const ttl of ["0", "-5", "1.5", "abc", String(MAX_TTL_SECONDS + 1)]) {
      const res = await ask(`${blob}?ttl=${ttl}`);
      expect([ttl, res.status, await message(res)]).toEqual([ttl, 400, `ttl must be whole seconds from 1 to ${MAX_TTL_SECONDS}, not ${ttl}`]);
    }
    expect((await ask(`/v2/images/${image.id}/blobs/not-a-digest/temp-url`)).status).toBe(400);
    expect((await ask(blob, null)).status).toBe(401);
    expect((await ask(`${blob}?ttl=${MAX_TTL_SECONDS}`)).status).toBe(200);
  });

  test("the key is the store's (0600), outlives a restart, and no signature reaches the log", async () => {
    const lines: string[] = [];
    const drop = log.addSink({ write: (e) => lines.push(JSON.stringify(e)) });
    const image = await publish("kv", "nine");
    const { url } = await reader.tempUrl(image.id, `sha256:${image.disk}`, 600);
    expect((await fetch(url, { method: "HEAD" })).status).toBe(200);
    drop();
    const sig = new URL(url).searchParams.get("temp_url_sig")!;
    expect(lines.some((l) => l.includes(`/v2/ooo/blobs/sha256:${image.disk}`))).toBe(true);
    expect(lines.join("\n")).not.toContain(sig);

    const keyFile = join(dir, "temp-url.key");
    expect((statSync(keyFile).mode & 0o777).toString(8)).toBe("600");
    expect(readFileSync(keyFile, "utf8").trim()).toMatch(/^[0-9a-f]{64}$/);
    await server.stop(true);
    await store.close();
    store = await Store.open({ dir, backend: new DirBackend(join(dir, "blobs")) });
    serve();
    // The same URL, on the restarted store (its port changed: the signature does not cover the origin).
    const again = await fetch(altered(url, (u) => (u.port = String(server.port))));
    expect(again.status).toBe(200);
  });
});
