import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { StoreRequestFailed } from "../../store/client/errors.ts";
import { withTmpfs } from "../support/scratch-fs.ts";
import { noise, startStore } from "../support/store.ts";

/**
 * A store whose disk fills up mid-upload (its folder on a 24 MiB tmpfs of the
 * test's own): the client hears that the store is full (413, as Glance), the store keeps no
 * part of the data, the image is queued again (not stuck in saving), and
 * once there is room the same upload works.
 */
const raw = { disk_format: "raw", container_format: "bare" };
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) e.isDirectory() ? out.push(...files(join(dir, e.name))) : out.push(e.name);
  return out;
}

describe("a store whose disk is full", () => {
  test("refuses the upload clearly, keeps nothing, and leaves the image queued", async () => {
    await withTmpfs("24M", async (root) => {
      const s = await startStore({ under: root });
      try {
        const img = await s.client.createImage({ name: "too-big", ...raw });
        const big = noise(40 << 20, 3);
        const whole = await s.client.uploadData(img.id, big).catch((e: unknown) => e);
        expect(whole).toBeInstanceOf(StoreRequestFailed);
        expect((whole as StoreRequestFailed).status).toBe(413);
        expect((whole as Error).message).toMatch(/storage media is full.*nothing of it was kept/);
        expect((await s.client.getImage(img.id)).status).toBe("queued");
        // A blob (an artifact, a chunk) that does not fit either.
        const blob = noise(30 << 20, 4);
        const put = await s.client.putBlob(`sha256:${sha256(blob)}`, blob).catch((e: unknown) => e);
        expect((put as StoreRequestFailed).status).toBe(413);
        expect(files(join(s.dir, "blobs"))).toEqual([]);
        // The space came back: the store works on.
        const small = noise(2 << 20, 5);
        await s.client.uploadData(img.id, small);
        expect(await s.client.getImage(img.id)).toMatchObject({ status: "active", os_hash_value: sha256(small) });
      } finally {
        await s.stop();
      }
    });
  }, 60_000);
});
