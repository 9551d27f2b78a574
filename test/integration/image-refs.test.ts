import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveRoleImage } from "../../deployer/images.ts";
import { parseStack } from "../../deployer/stack.ts";
import { promote, promoteTarget } from "../../pipeline/promote.ts";
import { publish } from "../../pipeline/publish.ts";
import { ImageUnavailable, UnknownImage } from "../../store/client/errors.ts";
import type { GlanceImage } from "../../store/client/image.ts";
import { imageRef, resolveImage } from "../../store/client/resolve.ts";
import { writeManifest } from "../support/manifest.ts";
import { makeRoot, writeCanonicalTar } from "../support/roots.ts";
import { noise, READ_TOKEN, REPO, startStore, type TestStore, WRITE_TOKEN } from "../support/store.ts";

/**
 * One grammar, one image: every form of reference (wire/image-ref.ts)
 * resolves to the same image through every way in — the store client, `ooo
 * store fetch` and `show`, `ooo promote`, a stack file's `image:` and `ooo
 * takeover --image` (the deployer's resolution) — against a real store
 * server. kv has versions 1–3 (3 withdrawn) and 4 (no data yet); version 2
 * carries the tag live, so NAME alone (the newest active) is version 2 too.
 */
let s: TestStore;
let work: string;
const kv: GlanceImage[] = [];
let target: GlanceImage;

async function ooo(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(["bun", join(REPO, "cli/ooo.ts"), ...args], {
    env: { ...process.env, OOO_STORE_URL: s.url, NO_COLOR: "1", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

beforeAll(async () => {
  s = await startStore();
  work = mkdtempSync(join(tmpdir(), "ooo-image-refs-"));
  for (const version of [1, 2, 3]) {
    const out = join(work, `kv-${version}`);
    makeRoot(join(work, `root-${version}`), { files: 12, variant: version });
    await writeCanonicalTar(join(work, `root-${version}`), `${out}.tar`);
    writeFileSync(`${out}.raw`, noise(64 * 1024, version));
    writeManifest(out, { name: "kv", artifacts: [{ type: "tar", file: `kv-${version}.tar` }, { type: "raw", file: `kv-${version}.raw` }] });
    kv.push((await publish({ client: s.client, output: out })).image);
  }
  await s.client.request("POST", `/v2/images/${kv[2]!.id}/actions/deactivate`, { ok: [204] });
  await s.client.createImage({ name: "kv", disk_format: "raw", container_format: "bare", ooo_version: "4" });
  await s.client.addTag(kv[1]!.id, "live");
  await s.client.addTag(kv[0]!.id, "old");
  target = kv[1]!;
}, 60_000);

afterAll(async () => {
  await s?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const forms = () => [
  ["ID", target.id],
  ["sha256:HEX", target.ooo_digest!],
  ["NAME", "kv"],
  ["NAME:TAG", "kv:live"],
  ["NAME@TAG", "kv@live"],
  ["NAME@VERSION", "kv@2"],
  ["NAME@sha256:HEX", `kv@${target.ooo_digest}`],
];

describe("every form names the same image", () => {
  test("through the store client", async () => {
    for (const [, ref] of forms()) expect([ref, (await resolveImage(s.reader, ref!)).id]).toEqual([ref, target.id]);
  });

  test("through a stack file's image: and ooo takeover --image (the deployer's resolution)", async () => {
    for (const [, ref] of forms()) {
      const stack = parseStack(`version: 1\nroles:\n  web:\n    count: 1\n    image: "${ref}"\n`, join(work, "stack.yaml"));
      const role = stack.roles[0]!;
      expect([ref, (await resolveRoleImage(s.reader, role.name, role.image)).id]).toEqual([ref, target.id]);
      // takeover --image checks its text with the same parser, then resolves it as a role's.
      expect((await resolveRoleImage(s.reader, "web", imageRef(ref!).text, { requireDisk: false })).digest).toBe(target.ooo_digest!);
    }
  });

  test("through ooo promote, and its older NAME VERSION form", async () => {
    for (const [form, ref] of forms()) {
      const tag = `probe-${form!.replace(/[^A-Za-z]/g, "").toLowerCase()}`;
      const r = await promote({ client: s.client, image: ref!, tag });
      expect([ref, r.image.id, r.image.tags]).toEqual([ref, target.id, expect.arrayContaining([tag])]);
    }
    for (const [name, second] of [["kv", "2"], ["kv", "live"], ["kv", target.ooo_digest!], ["kv", target.id]]) {
      const t = promoteTarget(name!, second);
      expect((await promote({ client: s.client, image: t.ref, name: t.name, tag: "older-form" })).image.id).toBe(target.id);
    }
  });

  test("through ooo store fetch and ooo store show", async () => {
    const env = { OOO_STORE_TOKEN: READ_TOKEN };
    const tar = readFileSync(join(work, "kv-2.tar"));
    for (const [i, [form, ref]] of forms().entries()) {
      const out = join(work, `fetched-${i}-${form!.replace(/[^A-Za-z]/g, "")}.tar`);
      const fetched = await ooo(["store", "fetch", ref!, "-o", out], env);
      expect([ref, fetched.code, fetched.stderr]).toEqual([ref, 0, expect.stringContaining(target.ooo_digest!)]);
      expect(createHash("sha256").update(readFileSync(out)).digest("hex")).toBe(createHash("sha256").update(tar).digest("hex"));
      const shown = await ooo(["store", "show", ref!], env);
      expect([ref, shown.code, JSON.parse(shown.stdout || "{}").id]).toEqual([ref, 0, target.id]);
    }
  }, 60_000);
});

describe("references that name no usable image say what there is", () => {
  test.each([
    ["kv@nope", UnknownImage, "no image in the store matches kv@nope: kv has tags live"],
    ["kv:nope", UnknownImage, ", and versions 1–4"],
    ["kvv@live", UnknownImage, "no image is named kvv; did you mean kv?"],
    [`sha256:${"0".repeat(64)}`, UnknownImage, "no image has this digest"],
    ["00000000-0000-0000-0000-000000000000", UnknownImage, "no image has this id"],
    ["kv@3", ImageUnavailable, "is deactivated: an operator withdrew its data"],
    ["kv@4", ImageUnavailable, "is queued: it has no data yet"],
  ])("%s", async (ref, type, message) => {
    const error = await resolveImage(s.reader, ref).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toContain(message);
  });

  test("on the command line: a clear message and exit code, no stack trace", async () => {
    const env = { OOO_STORE_TOKEN: READ_TOKEN };
    const unknown = await ooo(["store", "fetch", "kv@nope", "-o", join(work, "x.tar")], env);
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringContaining("error: no image in the store matches kv@nope: kv has tags")]);
    const bad = await ooo(["store", "show", "kv@sha256:abc"], env);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining('error: image reference "kv@sha256:abc": must be NAME@TAG (else NAME@VERSION)')]);
    const promoted = await ooo(["promote", "kv@3", "--tag", "x"], { OOO_STORE_TOKEN: WRITE_TOKEN });
    expect([promoted.code, promoted.stderr]).toEqual([1, expect.stringContaining("is deactivated")]);
    for (const r of [unknown, bad, promoted]) expect(r.stderr).not.toContain("    at ");
  }, 30_000);

  test("promote's older two-word form on the command line: promote NAME X is promote NAME@X", async () => {
    const r = await ooo(["promote", "kv", "2", "--tag", "two-words"], { OOO_STORE_TOKEN: WRITE_TOKEN });
    expect([r.code, r.stderr]).toEqual([0, expect.stringContaining("two-words → kv 2")]);
    expect((await resolveImage(s.reader, "kv:two-words")).ooo_version).toBe("2");
  }, 30_000);

  test("a role whose image cannot be used names the role and what the store has", async () => {
    const error = await resolveRoleImage(s.reader, "web", "kv@nope").catch((e: unknown) => e);
    expect((error as Error).message).toStartWith("role web: image kv@nope: kv has tags live");
    const withdrawn = await resolveRoleImage(s.reader, "web", "kv@3").catch((e: unknown) => e);
    expect((withdrawn as Error).message).toContain("is deactivated");
  });
});

test("the test's own store has what it says (so the tests above can fail)", async () => {
  const all: [string | undefined, string][] = [];
  for await (const i of s.reader.listImages({ name: "kv" })) all.push([i.ooo_version, i.status]);
  expect(all.sort()).toEqual([["1", "active"], ["2", "active"], ["3", "deactivated"], ["4", "queued"]]);
});
