import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DirBackend } from "./backends/dir.ts";
import { BadRequest, Conflict, Forbidden, ImageNotFound, NotFound, StoreLocked } from "./errors.ts";
import { Store } from "./store.ts";

let dir: string;
let store: Store;
const open = () => Store.open({ dir, backend: new DirBackend(join(dir, "blobs")) });
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "ooo-store-unit-"));
  store = await open();
});
afterEach(async () => {
  await store.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

const raw = { disk_format: "raw", container_format: "bare" };

describe("Store", () => {
  test("create applies Glance's rules", async () => {
    const r = await store.create({ name: "a", ...raw, os_distro: "debian" });
    expect(r).toMatchObject({ status: "queued", visibility: "shared", min_ram: 0, properties: { os_distro: "debian" } });
    await expect(store.create({ id: r.id, name: "again" })).rejects.toBeInstanceOf(Conflict);
    await expect(store.create({ status: "active" })).rejects.toBeInstanceOf(Forbidden);
    await expect(store.create({ self: "/x" })).rejects.toBeInstanceOf(Forbidden);
    await expect(store.create({ ooo_chunk_index: "sha256:x" })).rejects.toBeInstanceOf(Forbidden);
    await expect(store.create({ os_glance_import: "x" })).rejects.toBeInstanceOf(Forbidden);
    await expect(store.create({ custom: 5 })).rejects.toBeInstanceOf(BadRequest);
    await expect(store.create({ disk_format: "floppy" })).rejects.toBeInstanceOf(BadRequest);
    await expect(store.create({ ooo_digest: "md5:abc" })).rejects.toBeInstanceOf(BadRequest);
    await expect(store.create([])).rejects.toBeInstanceOf(BadRequest);
  });

  test("a version is unique among the images of a name", async () => {
    await store.create({ name: "n", ooo_version: "1" });
    await store.create({ name: "other", ooo_version: "1" });
    await expect(store.create({ name: "n", ooo_version: "1" })).rejects.toBeInstanceOf(Conflict);
  });

  test("uploads need both formats and a queued image", async () => {
    const bare = await store.create({ name: "x" });
    await expect(store.upload(bare.id, [new Uint8Array(4)])).rejects.toBeInstanceOf(BadRequest);
    const r = await store.create({ name: "y", ...raw });
    expect((await store.upload(r.id, [new Uint8Array(4).fill(7)])).status).toBe("active");
    await expect(store.upload(r.id, [new Uint8Array(4)])).rejects.toBeInstanceOf(Conflict);
  });

  test("a record left saving by a crash is queued again at the next start", async () => {
    const r = await store.create({ name: "crash", ...raw });
    await store.beginSaving(r.id);
    await store.close();
    store = await open();
    expect(store.get(r.id).status).toBe("queued");
  });

  test("one server per directory", async () => {
    await expect(open()).rejects.toBeInstanceOf(StoreLocked);
  });

  test("delete leaves a tombstone: 404, and the id is never reused", async () => {
    const r = await store.create({ name: "gone", ...raw });
    await store.delete(r.id);
    expect(() => store.get(r.id)).toThrow(ImageNotFound);
    await expect(store.create({ id: r.id })).rejects.toBeInstanceOf(Conflict);
    const p = await store.create({ name: "kept", ...raw, protected: true });
    await expect(store.delete(p.id)).rejects.toBeInstanceOf(Forbidden);
  });

  test("tags: PUT is idempotent, DELETE of an absent tag is 404", async () => {
    const r = await store.create({ name: "t", ...raw });
    await store.addTag(r.id, "stable");
    await store.addTag(r.id, "stable");
    expect(store.get(r.id).tags).toEqual(["stable"]);
    await expect(store.removeTag(r.id, "nope")).rejects.toBeInstanceOf(NotFound);
    await expect(store.addTag(r.id, "a/b")).rejects.toBeInstanceOf(BadRequest);
  });

  test("deactivate withdraws an active image's data until reactivated; other states are refused", async () => {
    const r = await store.create({ name: "withdrawn", ...raw });
    await expect(store.deactivate(r.id)).rejects.toThrow("Not allowed to deactivate image in status 'queued'");
    await store.upload(r.id, [new Uint8Array(4).fill(7)]);
    await store.deactivate(r.id);
    await store.deactivate(r.id); // already: nothing to do, as in Glance
    expect(store.get(r.id).status).toBe("deactivated");
    await expect(store.download(r.id, null, null)).rejects.toThrow("has been deactivated");
    await store.reactivate(r.id);
    await store.reactivate(r.id);
    const d = await store.download(r.id, null, null);
    expect(d.size).toBe(4);
    const queued = await store.create({ name: "never-active", ...raw });
    await expect(store.reactivate(queued.id)).rejects.toBeInstanceOf(Forbidden);
  });

  test("ids that are not UUIDs are simply not found", () => {
    for (const id of ["../x", "", "..%2F", "00000000-0000-0000-0000-000000000000/../x"]) expect(() => store.get(id)).toThrow(ImageNotFound);
  });
});

test("one live image per name and digest: publishing is idempotent even when concurrent", async () => {
  const digest = `sha256:${"1".repeat(64)}`;
  const a = await store.create({ name: "d", ooo_digest: digest });
  await expect(store.create({ name: "d", ooo_digest: digest })).rejects.toBeInstanceOf(Conflict);
  await store.create({ name: "other-name", ooo_digest: digest });
  await store.delete(a.id);
  await store.create({ name: "d", ooo_digest: digest });
});
