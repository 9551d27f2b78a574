import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publish } from "../../pipeline/publish.ts";
import { promote } from "../../pipeline/promote.ts";
import { StoreClient } from "../../store/client.ts";
import { fetchImage } from "../../store/fetch.ts";
import { resolveImage } from "../../store/resolve.ts";
import { writeManifest } from "../support/manifest.ts";
import { makeRoot, writeCanonicalTar } from "../support/roots.ts";
import { startStore, type TestStore, WRITE_TOKEN } from "../support/store.ts";

/**
 * Our client against a server that has only Glance's API — what a stock
 * Glance offers: ooo's extensions (/v2/ooo, chunk indexes, manifests) answer
 * 404 and the `tar` disk format is unknown, as in Glance's default
 * disk_formats. Publishing falls back to the tar as plain image data, fetch
 * to a whole (resumable) download, promote works unchanged.
 */
let s: TestStore;
let glance: ReturnType<typeof Bun.serve>;
let work: string;

beforeAll(async () => {
  s = await startStore();
  glance = Bun.serve({
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const notFound = () => Response.json({ error: { code: 404, title: "Not Found", message: "not a Glance API" } }, { status: 404 });
      if (url.pathname.startsWith("/v2/ooo") || /\/(chunk-index|manifest)$/.test(url.pathname)) return notFound();
      const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
      if (req.method === "POST" && body && JSON.parse(new TextDecoder().decode(body)).disk_format === "tar")
        return Response.json({ error: { code: 400, message: "Invalid disk format 'tar'" } }, { status: 400 });
      const res = await fetch(`${s.url}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body });
      return new Response(res.body, { status: res.status, headers: res.headers });
    },
  });
  work = mkdtempSync(join(tmpdir(), "ooo-plain-glance-"));
}, 30_000);
afterAll(async () => {
  glance?.stop(true);
  await s?.stop();
  rmSync(work, { recursive: true, force: true });
});

test("publish, promote and fetch work against a plain Glance API", async () => {
  const client = new StoreClient({ url: `http://127.0.0.1:${glance.port}/v2`, token: WRITE_TOKEN });
  expect(await client.info()).toBeUndefined();
  makeRoot(join(work, "root"));
  mkdirSync(join(work, "out"));
  await writeCanonicalTar(join(work, "root"), join(work, "out", "img.tar"));
  const m = writeManifest(join(work, "out", "img"), { name: "plain" });

  const first = await publish({ client, output: join(work, "out", "img") });
  expect(first).toMatchObject({ mode: "whole", alreadyPublished: false });
  expect(first.image).toMatchObject({ status: "active", disk_format: "raw", ooo_digest: m.digest });
  expect((await publish({ client, output: join(work, "out", "img") })).alreadyPublished).toBe(true);

  await promote({ client, name: "plain", tag: "stable" });
  const image = await resolveImage(client, "plain:stable");
  const out = join(work, "fetched.tar");
  const r = await fetchImage({ client, image, out, seeds: [join(work, "out", "img.tar")] });
  expect(r.mode).toBe("whole");
  expect(readFileSync(out).equals(readFileSync(join(work, "out", "img.tar")))).toBe(true);
}, 60_000);
