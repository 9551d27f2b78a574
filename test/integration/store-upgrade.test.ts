import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { publish } from "../../pipeline/publish.ts";
import { fetchImage } from "../../store/client/fetch.ts";
import { resolveImage } from "../../store/client/resolve.ts";
import { tmpdir } from "node:os";
import { buildTestImage } from "../support/images.ts";
import { startStore, type TestStore } from "../support/store.ts";

/**
 * The point of chunked distribution, on real images: publish debian-minimal
 * and debian-minimal -p less, then fetch the second as a node that has the
 * first would. A one-package change moves about 0.5% of the bytes as new
 * chunks (lib/chunking.ts); the target is at most 10% of the image
 * moved.
 */
let images: { base: string; less: string };
let s: TestStore;
let work: string;

beforeAll(async () => {
  // One after the other: the two builds share the builder's layer cache.
  images = { base: (await buildTestImage("debian")).base, less: (await buildTestImage("debian-less")).base };
  s = await startStore();
  work = mkdtempSync(join(tmpdir(), "ooo-upgrade-test-"));
}, 300_000);
afterAll(async () => {
  await s?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("an upgrade by one package publishes and fetches under 10% of the image", async () => {
  const first = await publish({ client: s.client, output: images.base });
  const second = await publish({ client: s.client, output: images.less });
  const size = statSync(`${images.less}.tar`).size;
  expect(first.mode).toBe("whole");
  expect(second.mode).toBe("chunks");
  expect(second.sentBytes).toBeLessThan(size * 0.1);

  const target = await resolveImage(s.reader, `${second.image.name}@${second.version}`);
  expect(second.version).toBe("2");
  const report = await fetchImage({ client: s.reader, image: target, out: join(work, "new.tar"), seeds: [`${images.base}.tar`] });
  expect(report.digest).toBe(target.ooo_digest!);
  expect(report.fetched + report.indexBytes).toBeLessThan(size * 0.1);
  expect(report.seeded + report.fetched).toBeGreaterThanOrEqual(size);

  const again = await publish({ client: s.client, output: images.less });
  expect(again).toMatchObject({ alreadyPublished: true, sentBytes: 0 });
}, 300_000);
