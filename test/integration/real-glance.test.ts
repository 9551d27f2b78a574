import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, closeSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promote } from "../../pipeline/promote.ts";
import { publish } from "../../pipeline/publish.ts";
import { StoreClient } from "../../store/client/client.ts";
import { downloadImage } from "../../store/client/download.ts";
import { CorruptDownload } from "../../store/client/errors.ts";
import { fetchImage } from "../../store/client/fetch.ts";
import { resolveImage } from "../../store/client/resolve.ts";
import { cuttingProxy } from "../support/cut-proxy.ts";
import { startGlance, type TestGlance } from "../support/glance.ts";
import { writeManifest } from "../support/manifest.ts";
import { makeRoot, writeCanonicalTar } from "../support/roots.ts";
import { noise } from "../support/store.ts";

/**
 * Our client against a real OpenStack Glance (Debian's python3-glance,
 * test/support/glance.ts), which has none of ooo's extensions (/v2/ooo,
 * chunk indexes, manifests) and, in its default disk_formats, no `tar`:
 * publishing falls back to the tar as plain `raw` image data, fetch to a
 * whole download (resumed with Range after a cut, verified by Glance's own
 * sha512 os_hash_value), promote works unchanged.
 */
let glance: TestGlance;
let client: StoreClient;
let work: string;
const sha512 = (d: Uint8Array) => createHash("sha512").update(d).digest("hex");

beforeAll(async () => {
  glance = await startGlance();
  // Glance without Keystone ignores the token; the client sends one anyway, as to any Glance.
  client = new StoreClient({ url: `${glance.url}/v2`, token: "unused-by-noauth-glance" });
  work = mkdtempSync(join(tmpdir(), "ooo-real-glance-"));
}, 90_000);
afterAll(async () => {
  await glance?.stop();
  rmSync(work, { recursive: true, force: true });
});

test("publish, promote and fetch work against a real Glance", async () => {
  expect(await client.info()).toBeUndefined();
  makeRoot(join(work, "root"));
  mkdirSync(join(work, "out"));
  const tar = await writeCanonicalTar(join(work, "root"), join(work, "out", "img.tar"));
  const m = writeManifest(join(work, "out", "img"), { name: "plain" });

  const tarBytes = readFileSync(tar);

  const first = await publish({ client, output: join(work, "out", "img") });
  expect(first).toMatchObject({ mode: "whole", alreadyPublished: false });
  // What Glance itself recorded: its own hash of the data, and our digest as a property.
  expect(await client.getImage(first.image.id)).toMatchObject({
    status: "active",
    disk_format: "raw",
    size: tarBytes.length,
    os_hash_algo: "sha512",
    os_hash_value: sha512(tarBytes),
    ooo_digest: m.digest,
  });
  const again = await publish({ client, output: join(work, "out", "img") });
  expect(again.alreadyPublished).toBe(true);
  expect(again.image.id).toBe(first.image.id);

  await promote({ client, image: "plain", tag: "stable" });
  const image = await resolveImage(client, "plain:stable");
  expect(image.id).toBe(first.image.id);
  const out = join(work, "fetched.tar");
  const r = await fetchImage({ client, image, out, seeds: [tar] });
  expect(r.mode).toBe("whole");
  expect(readFileSync(out).equals(tarBytes)).toBe(true);
}, 60_000);

test("a download from Glance cut mid-way resumes with Range and is verified by Glance's sha512", async () => {
  const data = noise(3_000_000, 11);
  const img = await client.createImage({ name: "resume", disk_format: "raw", container_format: "bare" });
  await client.uploadData(img.id, data);
  const proxy = await cuttingProxy(new URL(glance.url), 1_000_000);
  try {
    const out = join(work, "resumed.bin");
    const report = await downloadImage(new StoreClient({ url: `${proxy.url}/v2`, token: "t" }), await client.getImage(img.id), out, {
      backoffMs: 10,
    });
    expect(report.requests).toBe(2);
    expect(proxy.heads.filter((h) => h.startsWith("GET") && /range: bytes=\d+-/i.test(h))).toHaveLength(1);
    expect(sha512(readFileSync(out))).toBe(sha512(data));
  } finally {
    await proxy.close();
  }
}, 60_000);

test("a byte flipped in Glance's store is refused: no output, no partial file", async () => {
  const data = noise(2_000_000, 12);
  const img = await client.createImage({ name: "corrupt", disk_format: "raw", container_format: "bare" });
  await client.uploadData(img.id, data);
  const stored = join(glance.imagesDir, img.id);
  expect(existsSync(stored)).toBe(true);
  const fd = openSync(stored, "r+");
  writeSync(fd, new Uint8Array([data[1_234_567]! ^ 0xff]), 0, 1, 1_234_567);
  closeSync(fd);

  const dir = join(work, "corrupt");
  mkdirSync(dir);
  const error = await fetchImage({ client, image: await client.getImage(img.id), out: join(dir, "img.raw") }).catch((e) => e);
  expect(error).toBeInstanceOf(CorruptDownload);
  expect(String(error.message)).toContain(`sha512:${sha512(data)}`);
  expect(readdirSync(dir)).toEqual([]);
}, 60_000);
