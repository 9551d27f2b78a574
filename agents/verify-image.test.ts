import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageNotTrusted } from "../lib/errors.ts";
import { formatPublicKey, generateKey } from "../lib/minisign.ts";
import { publish } from "../pipeline/publish.ts";
import type { GlanceImage } from "../store/client/image.ts";
import { writeManifest } from "../test/support/manifest.ts";
import { makeRoot, writeCanonicalTar } from "../test/support/roots.ts";
import { startStore, type TestStore } from "../test/support/store.ts";
import { verifyNodeImage } from "./verify-image.ts";

/** What the takeover asks before it writes a slot: signed by a key from the drive, and naming the metadata's digest. */
let s: TestStore;
let work: string;
let image: GlanceImage;
const ci = generateKey();
const other = generateKey();

beforeAll(async () => {
  s = await startStore();
  work = mkdtempSync(join(tmpdir(), "ooo-verify-image-"));
  const out = join(work, "kv-1");
  makeRoot(join(work, "root"), { files: 8 });
  await writeCanonicalTar(join(work, "root"), `${out}.tar`);
  writeManifest(out, { name: "kv" });
  image = (await publish({ client: s.client, output: out, sign: ci })).image;
}, 60_000);
afterAll(async () => {
  await s?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("verifyNodeImage", () => {
  test("signed by a key the drive names, and naming the metadata's digest: taken", async () => {
    const r = await verifyNodeImage(s.reader, image, image.ooo_digest!, { keys: [formatPublicKey(other), formatPublicKey(ci)] });
    expect(r.signer?.key.id).toBe(ci.id);
    expect(r.signed?.manifest.digest).toBe(image.ooo_digest!);
  });

  test("another key, or another digest than the metadata's: refused, before anything is written", async () => {
    const foreign = await verifyNodeImage(s.reader, image, image.ooo_digest!, { keys: [formatPublicKey(other)] }).catch((e: unknown) => e);
    expect(foreign).toBeInstanceOf(ImageNotTrusted);
    expect((foreign as Error).message).toContain(`signed by key ID ${ci.id}, which is not trusted`);
    const lying = await verifyNodeImage(s.reader, image, `sha256:${"e".repeat(64)}`, { keys: [formatPublicKey(ci)] }).catch((e: unknown) => e);
    expect((lying as Error).message).toContain(`names root ${image.ooo_digest}, not sha256:${"e".repeat(64)}`);
  });

  test("no keys on the drive: nothing is checked", async () => {
    expect(await verifyNodeImage(s.reader, image, image.ooo_digest!, { keys: [] })).toEqual({});
    // The default: what the drive left in the run folder — here nothing.
    const saved = process.env.OOO_RUN_DIR;
    process.env.OOO_RUN_DIR = work;
    try {
      expect(await verifyNodeImage(s.reader, image, image.ooo_digest!)).toEqual({});
    } finally {
      if (saved === undefined) delete process.env.OOO_RUN_DIR;
      else process.env.OOO_RUN_DIR = saved;
    }
  });
});
