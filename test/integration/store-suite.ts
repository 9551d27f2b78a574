import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promote } from "../../pipeline/promote.ts";
import { publish } from "../../pipeline/publish.ts";
import { createBackend } from "../../store/backends/index.ts";
import { StoreClient } from "../../store/client/client.ts";
import type { StoreConfig } from "../../store/config.ts";
import { downloadImage } from "../../store/client/download.ts";
import { StoreRequestFailed } from "../../store/client/errors.ts";
import { fetchImage } from "../../store/client/fetch.ts";
import { resolveImage } from "../../store/client/resolve.ts";
import { cuttingProxy } from "../support/cut-proxy.ts";
import { writeManifest } from "../support/manifest.ts";
import { makeRoot, writeCanonicalTar } from "../support/roots.ts";
import { noise, READ_TOKEN, startStore, type TestStore, WRITE_TOKEN } from "../support/store.ts";

/**
 * The store's acceptance tests, run unchanged against every backend (the
 * issue: "run the same store tests against it"). Each backend's test file
 * calls storeSuite with a way to make a fresh backend config.
 */
const sha256 = (d: Uint8Array) => createHash("sha256").update(d).digest("hex");
const md5 = (d: Uint8Array) => createHash("md5").update(d).digest("hex");
const raw = { disk_format: "raw", container_format: "bare" };

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    if (e instanceof StoreRequestFailed) return e.status;
    throw e;
  }
}

/** Every blob the store's backend holds. */
async function blobNames(config: TestStore["config"]): Promise<string[]> {
  const backend = await createBackend(config as StoreConfig);
  const names: string[] = [];
  for await (const n of backend.list()) names.push(n);
  return names;
}

export function storeSuite(name: string, backend: () => StoreConfig["backend"]) {
  describe(`store on ${name}`, () => {
    let s: TestStore;
    let work: string;
    beforeAll(async () => {
      // With Glance's legacy md5 checksum on, so that path is tested too; glance-cli.test.ts runs the default.
      s = await startStore({ backend: backend(), md5Checksums: true });
      work = mkdtempSync(join(tmpdir(), "ooo-store-work-"));
    }, 30_000);
    afterAll(async () => {
      await s?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    test("round trip: create, upload, show, download whole and by Range", async () => {
      const data = noise(3_000_000, 7);
      const img = await s.client.createImage({ name: "round-trip", ...raw, tags: ["a"], color: "blue" });
      expect(img).toMatchObject({ status: "queued", name: "round-trip", tags: ["a"], color: "blue", size: null });
      await s.client.uploadData(img.id, data);
      expect(await s.client.getImage(img.id)).toMatchObject({
        status: "active",
        size: data.length,
        checksum: md5(data),
        os_hash_algo: "sha256",
        os_hash_value: sha256(data),
      });
      const whole = await s.client.downloadData(img.id);
      expect(whole.status).toBe(200);
      expect(whole.headers.get("Content-Type")).toBe("application/octet-stream");
      expect(whole.headers.get("Content-MD5")).toBe(md5(data));
      expect(sha256(new Uint8Array(await whole.arrayBuffer()))).toBe(sha256(data));
      const part = await s.client.downloadData(img.id, { start: 1000, end: 2000 });
      expect(part.status).toBe(206);
      expect(part.headers.get("Content-Range")).toBe(`bytes 1000-1999/${data.length}`);
      expect(Buffer.compare(new Uint8Array(await part.arrayBuffer()), data.subarray(1000, 2000))).toBe(0);
      const suffix = await fetch(`${s.url}/v2/images/${img.id}/file`, { headers: { "X-Auth-Token": READ_TOKEN, Range: "bytes=-100" } });
      expect(suffix.status).toBe(206);
      expect(Buffer.compare(new Uint8Array(await suffix.arrayBuffer()), data.subarray(data.length - 100))).toBe(0);
      const past = await fetch(`${s.url}/v2/images/${img.id}/file`, { headers: { "X-Auth-Token": READ_TOKEN, Range: `bytes=${data.length}-` } });
      expect(past.status).toBe(416);
      expect(past.headers.get("Content-Range")).toBe(`bytes */${data.length}`);
      const queued = await s.client.createImage({ name: "no-data", ...raw });
      expect((await s.client.downloadData(queued.id)).status).toBe(204);
    }, 60_000);

    test("a download cut mid-way resumes with Range and is verified", async () => {
      const data = noise(4_000_000, 8);
      const img = await s.client.createImage({ name: "resume", ...raw });
      await s.client.uploadData(img.id, data);
      const proxy = await cuttingProxy(new URL(s.url), 1_500_000);
      try {
        const out = join(work, "resumed.bin");
        const report = await downloadImage(new StoreClient({ url: proxy.url, token: READ_TOKEN }), await s.client.getImage(img.id), out, {
          backoffMs: 10,
        });
        expect(report.requests).toBe(2);
        expect(report.received).toBe(data.length);
        expect(proxy.heads.filter((h) => h.startsWith("GET") && /range: bytes=\d+-/i.test(h))).toHaveLength(1);
        expect(sha256(readFileSync(out))).toBe(sha256(data));
        expect(readdirSync(work).filter((f) => f.endsWith(".partial"))).toEqual([]);
      } finally {
        await proxy.close();
      }
    }, 60_000);

    test("concurrent uploads: one image twice, and many images at once", async () => {
      const one = await s.client.createImage({ name: "same", ...raw });
      const data = noise(2_000_000, 9);
      const codes = await Promise.all([status(s.client.uploadData(one.id, data)), status(s.client.uploadData(one.id, data))]);
      expect(codes.sort()).toEqual([200, 409]);
      expect(await s.client.getImage(one.id)).toMatchObject({ status: "active", os_hash_value: sha256(data) });

      const datas = [1, 2, 3, 4, 5, 5].map((seed) => noise(1_000_000 + seed * 1000, 100 + seed));
      const images = await Promise.all(datas.map((_, i) => s.client.createImage({ name: `many-${i}`, ...raw })));
      await Promise.all(images.map((img, i) => s.client.uploadData(img.id, datas[i]!)));
      for (const [i, img] of images.entries()) {
        expect(await s.client.getImage(img.id)).toMatchObject({ status: "active", os_hash_value: sha256(datas[i]!) });
        const back = new Uint8Array(await (await s.client.downloadData(img.id)).arrayBuffer());
        expect(sha256(back)).toBe(sha256(datas[i]!));
      }
    }, 60_000);

    test("a digest or size mismatch is refused, the image goes back to queued and nothing is kept", async () => {
      const data = noise(1_500_000, 10);
      const wrong = `sha256:${sha256(noise(10, 11))}`;
      const img = await s.client.createImage({ name: "mismatch", ...raw, ooo_digest: wrong });
      expect(await status(s.client.uploadData(img.id, data))).toBe(400);
      expect((await s.client.getImage(img.id)).status).toBe("queued");
      expect(await s.client.missingBlobs([`sha256:${sha256(data)}`])).toEqual([`sha256:${sha256(data)}`]);
      expect(await status(s.client.uploadData(img.id, data, { size: data.length + 1 }))).toBe(400);
      // Still queued, so the digest may be corrected and the upload retried.
      await s.client.updateImage(img.id, [{ op: "replace", path: "/ooo_digest", value: `sha256:${sha256(data)}` }]);
      await s.client.uploadData(img.id, data);
      expect((await s.client.getImage(img.id)).status).toBe("active");
      expect(await status(s.client.putBlob(`sha256:${sha256(noise(5, 1))}`, noise(5, 2)))).toBe(400);
    }, 60_000);

    test("empty uploads are refused unless asked for", async () => {
      const img = await s.client.createImage({ name: "empty", ...raw });
      expect(await status(s.client.uploadData(img.id, new Uint8Array(0)))).toBe(400);
      expect((await s.client.getImage(img.id)).status).toBe("queued");
      await s.client.uploadData(img.id, new Uint8Array(0), { allowEmpty: true });
      expect(await s.client.getImage(img.id)).toMatchObject({ status: "active", size: 0 });
    }, 60_000);

    test("list filters: name, tags, status, properties, paging", async () => {
      const made: string[] = [];
      for (const [i, tags] of [["x"], ["x", "stable"], ["stable"], []].entries()) {
        const img = await s.client.createImage({ name: "filtered", ...raw, tags, ooo_version: String(i + 1) });
        if (i < 3) await s.client.uploadData(img.id, noise(1000, 300 + i));
        made.push(img.id);
      }
      const [i0, i1, i2, i3] = made as [string, string, string, string];
      const ids = async (q: Record<string, string | string[]>, page = 200) => {
        const out = [];
        for await (const i of s.client.listImages({ name: "filtered", ...q }, page)) out.push(i.id);
        return out;
      };
      expect(await ids({})).toEqual([...made].reverse());
      expect(await ids({ tag: ["x", "stable"] })).toEqual([i1]);
      expect(await ids({ tag: "stable", sort_key: "created_at", sort_dir: "asc" })).toEqual([i1, i2]);
      expect(await ids({ status: "queued" })).toEqual([i3]);
      expect(await ids({ ooo_version: "3" })).toEqual([i2]);
      expect(await ids({}, 1)).toEqual([...made].reverse());
      expect(await ids({ status: "active" }, 2)).toEqual([i2, i1, i0]);
      expect((await resolveImage(s.reader, "filtered:stable")).id).toBe(i2);
      expect((await resolveImage(s.reader, "filtered@1")).id).toBe(i0);
      await s.client.deleteImage(i0);
      expect(await ids({ status: "active" })).toEqual([i2, i1]);
      expect(await status(s.client.getImage(i0))).toBe(404);
    }, 60_000);

    test("tokens: none or unknown is 401, a read token reads but cannot write", async () => {
      expect((await fetch(`${s.url}/versions`)).status).toBe(200);
      expect((await fetch(`${s.url}/v2/images`)).status).toBe(401);
      expect((await fetch(`${s.url}/v2/images`, { headers: { "X-Auth-Token": "not-a-token-at-all-123" } })).status).toBe(401);
      const img = await s.client.createImage({ name: "guarded", ...raw });
      await s.client.uploadData(img.id, noise(1000, 12));
      expect((await s.reader.getImage(img.id)).status).toBe("active");
      expect((await s.reader.downloadData(img.id)).status).toBe(200);
      // status() at once on each: a refusal that comes before its turn to be
      // awaited would otherwise be an unhandled rejection, failing the test.
      const attempts = [
        s.reader.createImage({ name: "nope", ...raw }),
        s.reader.uploadData(img.id, noise(10, 1)),
        s.reader.updateImage(img.id, [{ op: "add", path: "/k", value: "v" }]),
        s.reader.addTag(img.id, "t"),
        s.reader.deleteImage(img.id),
        s.reader.putBlob(`sha256:${sha256(noise(10, 1))}`, noise(10, 1)),
      ].map(status);
      for (const attempt of attempts) expect(await attempt).toBe(403);
      expect(await new StoreClient({ url: s.url, token: WRITE_TOKEN }).missingBlobs([])).toEqual([]);
    }, 60_000);

    test("path traversal in ids, names, tags and digests is refused", async () => {
      const h = { "X-Auth-Token": WRITE_TOKEN };
      for (const path of [
        "/v2/images/..%2F..%2F..%2Fetc%2Fpasswd",
        "/v2/images/..%2F..%2Fimages/file",
        "/v2/images/%2e%2e/file",
        "/v2/ooo/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd",
      ]) {
        const res = await fetch(`${s.url}${path}`, { headers: h });
        expect([400, 404]).toContain(res.status);
        expect(await res.text()).not.toContain("root:");
      }
      for (const name of ["../../escape", "a/b", "..", "x\\y", "line\nbreak"])
        expect(await status(s.client.createImage({ name, ...raw }))).toBe(400);
      expect(await status(s.client.createImage({ id: "../../x", name: "ok", ...raw }))).toBe(400);
      const img = await s.client.createImage({ name: "traversal", ...raw });
      expect(await status(s.client.addTag(img.id, "../../escape"))).toBe(400);
      expect(await status(s.client.updateImage(img.id, [{ op: "replace", path: "/name", value: "../up" }]))).toBe(400);
      expect(existsSync(join(s.dir, "..", "escape"))).toBe(false);
    }, 60_000);

    test("publish is idempotent and sends only new chunks; fetch uses seeds; promote moves the tag", async () => {
      const [a, b] = [join(work, "rootA"), join(work, "rootB")];
      makeRoot(a);
      makeRoot(b, { variant: 1 });
      mkdirSync(join(work, "out"), { recursive: true });
      await writeCanonicalTar(a, join(work, "out", "a.tar"));
      await writeCanonicalTar(b, join(work, "out", "b.tar"));
      writeFileSync(join(work, "out", "b.qcow2"), noise(300_000, 42)); // stands in for a disk image
      writeManifest(join(work, "out", "a"), { name: "synthetic" });
      const mb = writeManifest(join(work, "out", "b"), {
        name: "synthetic",
        artifacts: [
          { type: "tar", file: "b.tar" },
          { type: "qcow2", file: "b.qcow2" },
        ],
      });

      const first = await publish({ client: s.client, output: join(work, "out", "a") });
      expect(first).toMatchObject({ alreadyPublished: false, mode: "whole", version: "1" });
      const again = await publish({ client: s.client, output: join(work, "out", "a") });
      expect(again).toMatchObject({ alreadyPublished: true, sentBytes: 0, version: "1" });
      expect(again.image.id).toBe(first.image.id);

      const second = await publish({ client: s.client, output: join(work, "out", "b") });
      expect(second).toMatchObject({ alreadyPublished: false, mode: "chunks", version: "2" });
      const tarBytes = readFileSync(join(work, "out", "b.tar")).length;
      expect(second.sentBytes - 300_000).toBeLessThan(tarBytes * 0.15);
      expect(second.image.ooo_manifest).toMatch(/^sha256:/);
      expect((await s.reader.getManifest(second.image.id)).digest).toBe(mb.digest);
      expect(sha256(await s.reader.getBlob(`sha256:${mb.artifacts[1]!.sha256}`))).toBe(mb.artifacts[1]!.sha256);

      for (const seed of [join(work, "out", "a.tar"), a]) {
        const out = join(work, "fetched.tar");
        const r = await fetchImage({ client: s.reader, image: await resolveImage(s.reader, "synthetic@2"), out, seeds: [seed], sourceDateEpoch: 1704067200 });
        expect(r.mode).toBe("chunks");
        expect(r.fetched).toBeLessThan(tarBytes * 0.15);
        expect(r.seeded + r.fetched).toBeGreaterThanOrEqual(tarBytes);
        expect(sha256(readFileSync(out))).toBe(mb.digest.slice(7));
      }

      await promote({ client: s.client, image: "synthetic@1", tag: "stable" });
      expect((await resolveImage(s.reader, "synthetic:stable")).ooo_version).toBe("1");
      const moved = await promote({ client: s.client, image: `synthetic@${mb.digest}`, tag: "stable" });
      expect(moved.removedFrom.map((i) => i.ooo_version)).toEqual(["1"]);
      const tagged = [];
      for await (const i of s.reader.listImages({ name: "synthetic", tag: "stable" })) tagged.push(i.ooo_version);
      expect(tagged).toEqual(["2"]);
    }, 60_000);

    test("two concurrent publishes of one build make one image", async () => {
      const root = join(work, "rootC");
      makeRoot(root, { variant: 3, files: 40 });
      mkdirSync(join(work, "out"), { recursive: true });
      await writeCanonicalTar(root, join(work, "out", "c.tar"));
      writeManifest(join(work, "out", "c"), { name: "concurrent" });
      const [x, y] = await Promise.all([
        publish({ client: s.client, output: join(work, "out", "c") }),
        publish({ client: s.client, output: join(work, "out", "c") }),
      ]);
      expect(x.image.id).toBe(y.image.id);
      const all = [];
      for await (const i of s.reader.listImages({ name: "concurrent" })) all.push(i);
      expect(all.map((i) => [i.status, i.ooo_version])).toEqual([["active", "1"]]);
    }, 60_000);

    test("a server killed mid-upload leaves a clean store: the image is queued again, no blob is kept", async () => {
      const fresh = await startStore({ backend: backend() });
      try {
        const img = await fresh.client.createImage({ name: "crash", ...raw });
        const abort = new AbortController();
        let sent = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (sent >= 6_000_000) return new Promise(() => {}); // stall: the server keeps waiting
            controller.enqueue(noise(1_000_000, 50 + sent));
            sent += 1_000_000;
          },
        });
        const upload = fetch(`${fresh.url}/v2/images/${img.id}/file`, {
          method: "PUT",
          body,
          headers: { "X-Auth-Token": WRITE_TOKEN, "Content-Type": "application/octet-stream" },
          signal: abort.signal,
        }).catch(() => undefined);
        for (let i = 0; (await fresh.client.getImage(img.id)).status !== "saving"; i++) {
          if (i > 200) throw new Error("the upload never started");
          await Bun.sleep(20);
        }
        await Bun.sleep(300);
        await fresh.kill();
        abort.abort();
        await upload;
        await fresh.restart();
        expect((await fresh.client.getImage(img.id)).status).toBe("queued");
        expect(await blobNames(fresh.config)).toEqual([]);
        if (fresh.config.backend?.type === "dir") {
          const leftovers: string[] = [];
          const walk = (d: string) => {
            for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : leftovers.push(e.name);
          };
          walk(join(fresh.dir, "blobs"));
          expect(leftovers).toEqual([]);
        }
        const data = noise(2_000_000, 51);
        await fresh.client.uploadData(img.id, data);
        expect(await fresh.client.getImage(img.id)).toMatchObject({ status: "active", os_hash_value: sha256(data) });
      } finally {
        await fresh.stop();
      }
    }, 60_000);
  });
}
