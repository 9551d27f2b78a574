import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageUnavailable } from "../../store/client/errors.ts";
import { resolveImage } from "../../store/client/resolve.ts";
import { requireCommand } from "../support/require.ts";
import { noise, READ_TOKEN, startStore, type TestStore, WRITE_TOKEN } from "../support/store.ts";

/**
 * Interop: Debian's python3-glanceclient (the `glance` CLI) against `ooo
 * store serve`, skipping Keystone with --os-image-url/--os-auth-token as an
 * operator would. The CLI validates every body against the schema we serve
 * and verifies downloads by os_hash_value, so this is the check that we
 * speak Glance v2 as it is spoken.
 */
let s: TestStore;
let home: string;

beforeAll(async () => {
  requireCommand("glance");
  s = await startStore();
  home = mkdtempSync(join(tmpdir(), "ooo-glance-home-"));
}, 30_000);
afterAll(async () => {
  await s?.stop();
  rmSync(home, { recursive: true, force: true });
});

/** Run the glance CLI; its schema cache goes to a private HOME. */
async function glance(args: string[], options: { token?: string; stdin?: "ignore" | Uint8Array } = {}) {
  const p = Bun.spawn(["glance", "--os-image-url", s.url, "--os-auth-token", options.token ?? WRITE_TOKEN, ...args], {
    env: { ...process.env, HOME: home, OS_AUTH_URL: "", OS_USERNAME: "", OS_PASSWORD: "" },
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = [await new Response(p.stdout).text(), await new Response(p.stderr).text(), await p.exited];
  return { out, err, code };
}

/** `| key | value |` rows of the CLI's tables. */
function field(table: string, key: string): string | undefined {
  const row = table.split("\n").find((l) => new RegExp(`^\\|\\s*${key}\\s*\\|`).test(l));
  return row?.split("|")[2]?.trim();
}

describe("the glance CLI against ooo store serve", () => {
  test("image-create with --file uploads; image-list, image-show, image-download verify", async () => {
    const data = noise(3_000_000, 21);
    const file = join(home, "disk.raw");
    writeFileSync(file, data);
    const created = await glance(["image-create", "--name", "cli-image", "--disk-format", "raw", "--container-format", "bare", "--file", file, "--property", "flavour=plain"]);
    expect(created.err).toBe("");
    expect(created.code).toBe(0);
    const id = field(created.out, "id")!;
    expect(field(created.out, "status")).toBe("active");
    expect(field(created.out, "size")).toBe(String(data.length));
    expect(field(created.out, "os_hash_value")).toBe(createHash("sha256").update(data).digest("hex"));
    expect(field(created.out, "flavour")).toBe("plain");

    const list = await glance(["image-list"]);
    expect(list.code).toBe(0);
    expect(list.out).toContain(id);
    expect(list.out).toContain("cli-image");

    const out = join(home, "downloaded.raw");
    const dl = await glance(["image-download", id, "--file", out], { token: READ_TOKEN });
    expect(dl.code).toBe(0);
    expect(Buffer.compare(readFileSync(out), data)).toBe(0);

    // No md5 by default, as in Glance since Victoria: the CLI verifies by
    // os_hash_value, and a flipped byte in the stored blob fails the download.
    const sha = field(created.out, "os_hash_value")!;
    expect(["", "None"]).toContain(field(created.out, "checksum") ?? "");
    const blob = join(s.dir, "blobs", "sha256", sha.slice(0, 2), sha);
    const fd = openSync(blob, "r+");
    writeSync(fd, Buffer.from([data[1000]! ^ 0xff]), 0, 1, 1000);
    closeSync(fd);
    const bad = await glance(["image-download", id, "--file", join(home, "corrupt.raw")], { token: READ_TOKEN });
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/corrupt|hash|checksum/i);
  }, 60_000);

  test("image-tag-update, image-update (name and properties), image-tag-delete, image-delete", async () => {
    const img = await s.client.createImage({ name: "cli-edit", disk_format: "raw", container_format: "bare" });
    await s.client.uploadData(img.id, noise(1000, 22));
    expect((await glance(["image-tag-update", img.id, "stable"])).code).toBe(0);
    const updated = await glance(["image-update", img.id, "--name", "cli-renamed", "--property", "colour=red"]);
    expect(updated.code).toBe(0);
    expect(field(updated.out, "name")).toBe("cli-renamed");
    expect(await s.client.getImage(img.id)).toMatchObject({ name: "cli-renamed", colour: "red", tags: ["stable"] });
    const removed = await glance(["image-update", img.id, "--remove-property", "colour"]);
    expect(removed.code).toBe(0);
    expect((await s.client.getImage(img.id)).colour).toBeUndefined();
    expect((await glance(["image-tag-delete", img.id, "stable"])).code).toBe(0);
    expect((await s.client.getImage(img.id)).tags).toEqual([]);
    expect((await glance(["image-delete", img.id])).code).toBe(0);
    const gone = await glance(["image-show", img.id]);
    expect(gone.code).not.toBe(0);
  }, 60_000);

  test("image-deactivate withholds the data (file and chunk index) until image-reactivate; a node cannot deactivate", async () => {
    const data = noise(5000, 23);
    const img = await s.client.createImage({ name: "cli-withdrawn", disk_format: "raw", container_format: "bare" });
    await s.client.uploadData(img.id, data);
    const denied = await glance(["image-deactivate", img.id], { token: READ_TOKEN });
    expect(denied.code).not.toBe(0);
    expect((await s.client.getImage(img.id)).status).toBe("active");

    expect((await glance(["image-deactivate", img.id])).code).toBe(0);
    expect(field((await glance(["image-show", img.id])).out, "status")).toBe("deactivated");
    const refused = await glance(["image-download", img.id, "--file", join(home, "withdrawn.raw")], { token: READ_TOKEN });
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain("deactivated");
    const index = await fetch(`${s.url}/v2/images/${img.id}/chunk-index`, { headers: { "X-Auth-Token": READ_TOKEN } });
    expect(index.status).toBe(403);
    // ooo's own tools say why, instead of "not found".
    const why = await resolveImage(s.reader, "cli-withdrawn").catch((e: unknown) => e);
    expect(why).toBeInstanceOf(ImageUnavailable);
    expect((why as Error).message).toContain("is deactivated");

    expect((await glance(["image-reactivate", img.id])).code).toBe(0);
    const out = join(home, "reactivated.raw");
    expect((await glance(["image-download", img.id, "--file", out], { token: READ_TOKEN })).code).toBe(0);
    expect(Buffer.compare(readFileSync(out), data)).toBe(0);
  }, 60_000);

  test("image-list pages through `next` links", async () => {
    for (let i = 0; i < 5; i++) await s.client.createImage({ name: `paged-${i}`, disk_format: "raw", container_format: "bare" });
    const list = await glance(["image-list", "--page-size", "2"]);
    expect(list.code).toBe(0);
    for (let i = 0; i < 5; i++) expect(list.out).toContain(`paged-${i}`);
  }, 60_000);

  test("an empty stdin (no TTY in CI) is refused, not stored as a 0-byte image", async () => {
    const r = await glance(["image-create", "--name", "cli-empty", "--disk-format", "raw", "--container-format", "bare"], { stdin: new Uint8Array(0) });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("empty upload");
    const images = [];
    for await (const i of s.client.listImages({ name: "cli-empty" })) images.push(i);
    expect(images.map((i) => i.status)).toEqual(["queued"]);
  }, 60_000);

  test("a read-only token cannot create", async () => {
    const r = await glance(["image-create", "--name", "nope", "--disk-format", "raw", "--container-format", "bare"], { token: READ_TOKEN });
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("may only read");
  }, 60_000);
});
