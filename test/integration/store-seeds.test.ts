import { afterAll, beforeAll, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publish } from "../../pipeline/publish.ts";
import { fetchImage } from "../../store/client/fetch.ts";
import { resolveImage } from "../../store/client/resolve.ts";
import { writeManifest } from "../support/manifest.ts";
import { requireCommand, requireRoot } from "../support/require.ts";
import { makeRoot, writeCanonicalTar } from "../support/roots.ts";
import { noise, startStore, type TestStore } from "../support/store.ts";

/**
 * Seeds as a node has them: its current root partition (a block device —
 * here a loop device over the old image's tar), several seeds at once, an
 * unrelated file, none at all. Whatever the seeds, the result is the image,
 * byte for byte, and only what the seeds lack is fetched.
 */
let s: TestStore;
let work: string;
let sizeB: number;
let digestB: string;

beforeAll(async () => {
  s = await startStore();
  work = mkdtempSync(join(tmpdir(), "ooo-seeds-"));
  makeRoot(join(work, "a"));
  makeRoot(join(work, "b"), { variant: 2 });
  mkdirSync(join(work, "out"));
  await writeCanonicalTar(join(work, "a"), join(work, "out", "a.tar"));
  await writeCanonicalTar(join(work, "b"), join(work, "out", "b.tar"));
  writeManifest(join(work, "out", "a"), { name: "seeded" });
  digestB = writeManifest(join(work, "out", "b"), { name: "seeded" }).digest;
  sizeB = readFileSync(join(work, "out", "b.tar")).length;
  await publish({ client: s.client, output: join(work, "out", "a") });
  await publish({ client: s.client, output: join(work, "out", "b") });
}, 60_000);
afterAll(async () => {
  await s?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function fetchWith(seeds: string[]) {
  const out = join(work, "fetched.tar");
  const report = await fetchImage({ client: s.reader, image: await resolveImage(s.reader, digestB), out, seeds, sourceDateEpoch: 1704067200 });
  expect(`sha256:${new Bun.CryptoHasher("sha256").update(readFileSync(out)).digest("hex")}`).toBe(digestB);
  return report;
}

test("a block device (the node's current root partition) is a seed", async () => {
  requireRoot();
  requireCommand("losetup");
  const loop = execFileSync("losetup", ["--find", "--show", "--read-only", join(work, "out", "a.tar")], { encoding: "utf8" }).trim();
  try {
    const r = await fetchWith([loop]);
    expect(r.fetched).toBeLessThan(sizeB * 0.15);
    expect(r.seeded).toBeGreaterThan(sizeB * 0.85);
  } finally {
    execFileSync("losetup", ["-d", loop]);
  }
}, 60_000);

test("several seeds: each chunk comes from the first that has it", async () => {
  writeFileSync(join(work, "unrelated.bin"), noise(500_000, 77));
  const r = await fetchWith([join(work, "unrelated.bin"), join(work, "a"), join(work, "out", "a.tar")]);
  expect(r.fetched).toBeLessThan(sizeB * 0.15);
}, 60_000);

test("an unrelated seed or none: everything is fetched, and the result is still the image", async () => {
  const r = await fetchWith([join(work, "unrelated.bin")]);
  expect(r.seeded).toBe(0);
  expect(r.fetched).toBe(sizeB);
  expect((await fetchWith([])).fetched).toBe(sizeB);
}, 60_000);
