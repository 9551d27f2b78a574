import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApi } from "./api.ts";
import { DirBackend } from "./backends/dir.ts";
import { Store } from "./store.ts";
import { publishTestImage, sha256Hex as hex } from "../test/support/store-image.ts";

/**
 * A deactivated image gives no data in any form, through the API as a node's
 * read token sees it: not its file, chunk index or manifest, and not the
 * blobs only it refers to by their digest — while a blob an active image
 * shares stays readable, and everything comes back on reactivation.
 */
const tokens = { write: ["write-token-0123456789"], read: ["read-token-0123456789"] };
let dir: string;
let store: Store;
let api: (req: Request) => Promise<Response>;
const call = (method: string, path: string, body?: string | Uint8Array, token = tokens.write[0]!) =>
  api(new Request(`http://store${path}`, { method, body, headers: { "X-Auth-Token": token, "Content-Type": "application/octet-stream" } }));
const read = (path: string) => call("GET", path, undefined, tokens.read[0]!);

const kernel = new TextEncoder().encode("a kernel both images boot");
const publish = (name: string, seed: string) => publishTestImage(store, call, name, seed, kernel);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ooo-withdrawn-"));
  store = await Store.open({ dir, backend: new DirBackend(join(dir, "blobs")) });
  api = createApi(store, { tokens });
});
afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("withdrawn is withdrawn", () => {
  test("a deactivated image's manifest and its own blobs are refused; a blob an active image shares is not", async () => {
    const bad = await publish("kv", "bad build");
    await publish("kv", "good build");
    const own = [`/v2/images/${bad.id}/manifest`, `/v2/ooo/blobs/sha256:${bad.disk}`, `/v2/ooo/blobs/sha256:${bad.data}`, `/v2/ooo/blobs/${bad.manifest}`];
    for (const path of own) expect([path, (await read(path)).status]).toEqual([path, 200]);

    expect((await call("POST", `/v2/images/${bad.id}/actions/deactivate`)).status).toBe(204);
    for (const path of own) {
      const res = await read(path);
      expect([path, res.status]).toEqual([path, 403]);
      expect(await res.text()).toMatch(/deactivated/);
    }
    expect((await read(`/v2/ooo/blobs/sha256:${hex(kernel)}`)).status).toBe(200);

    expect((await call("POST", `/v2/images/${bad.id}/actions/reactivate`)).status).toBe(204);
    for (const path of own) expect([path, (await read(path)).status]).toEqual([path, 200]);
  });
});
