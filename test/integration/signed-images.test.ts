import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RoleImageUnusable } from "../../deployer/errors.ts";
import { resolveRoleImage } from "../../deployer/images.ts";
import { trustedKeys } from "../../lib/image-trust.ts";
import type { GlanceImage } from "../../store/client/image.ts";
import { writeManifest } from "../support/manifest.ts";
import { requireCommand } from "../support/require.ts";
import { makeRoot, writeCanonicalTar } from "../support/roots.ts";
import { noise, READ_TOKEN, REPO, startStore, type TestStore, WRITE_TOKEN } from "../support/store.ts";

/**
 * Signed images end to end, through the command line and a real store
 * server: `ooo key generate` makes a minisign key pair, `ooo publish --sign`
 * stores the manifest's signature with the image, `ooo store verify` checks
 * it, `ooo store fetch --manifest` hands out what Debian's `minisign -Vm`
 * verifies without ooo, and a stack that trusts a key refuses — before any
 * disk is written, naming the image and the key — an image signed by
 * another key, or whose manifest or root a store changed after signing.
 */
let s: TestStore;
let work: string;
let kv: GlanceImage;
const at = (name: string) => join(work, name);

async function ooo(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(["bun", join(REPO, "cli/ooo.ts"), ...args], {
    env: { ...process.env, OOO_STORE_URL: s.url, OOO_STORE_TOKEN: READ_TOKEN, NO_COLOR: "1", ...env },
    stdout: "pipe",
    stderr: "pipe",
    cwd: work,
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

function minisign(args: string[]) {
  requireCommand("minisign");
  return Bun.spawnSync(["minisign", ...args], { stdout: "pipe", stderr: "pipe" }).exitCode;
}

async function build(name: string, variant: number) {
  const out = at(`${name}-${variant}`);
  makeRoot(at(`root-${name}-${variant}`), { files: 12, variant });
  await writeCanonicalTar(at(`root-${name}-${variant}`), `${out}.tar`);
  writeFileSync(`${out}.raw`, noise(64 * 1024, variant));
  writeManifest(out, { name, artifacts: [{ type: "tar", file: `${name}-${variant}.tar` }, { type: "raw", file: `${name}-${variant}.raw` }] });
  return out;
}

beforeAll(async () => {
  s = await startStore();
  work = mkdtempSync(join(tmpdir(), "ooo-signed-"));
  writeFileSync(at("read.token"), `${READ_TOKEN}\n`, { mode: 0o600 });
  for (const name of ["ci", "other"]) expect((await ooo(["key", "generate", name, "--unencrypted"])).code).toBe(0);
  const out = await build("kv", 1);
  const published = await ooo(["publish", out, "--sign", "ci.key", "--tag", "live"], { OOO_STORE_TOKEN: WRITE_TOKEN });
  expect(published.stderr).toContain("manifest signed by key ID");
  expect(published.code).toBe(0);
  kv = await s.reader.getImage((await s.reader.listImages({ name: "kv" }).next()).value!.id);
}, 60_000);

afterAll(async () => {
  await s?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const keyId = (pub: string) => readFileSync(at(pub), "utf8").split("\n")[0]!.split(" ").at(-1)!;

describe("signed images", () => {
  test("ooo key generate: NAME.key (0600) and NAME.pub in minisign's format; an existing key is never overwritten", async () => {
    expect(statSync(at("ci.key")).mode & 0o777).toBe(0o600);
    expect(readFileSync(at("ci.pub"), "utf8")).toMatch(/^untrusted comment: minisign public key [0-9A-F]{16}\n[A-Za-z0-9+/]{56}\n$/);
    const again = await ooo(["key", "generate", "ci", "--unencrypted"]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("ci.key exists");
  });

  test("ooo store verify: the signing key passes, another key is refused naming both", async () => {
    const ok = await ooo(["store", "verify", "kv@live", "--key", "ci.pub"]);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain(`manifest signed by ci.pub (key ID ${keyId("ci.pub")})`);
    const refused = await ooo(["store", "verify", "kv@live", "--key", "other.pub"]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(`kv 1 (${kv.ooo_digest})`);
    expect(refused.stderr).toContain(`signed by key ID ${keyId("ci.pub")}, which is not trusted; the keys trusted are other.pub (key ID ${keyId("other.pub")})`);
  });

  test("ooo store fetch --manifest writes FILE and FILE.minisig; minisign -Vm verifies them without ooo", async () => {
    const r = await ooo(["store", "fetch", "kv@live", "--manifest", "-o", "kv.json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(at("kv.json"), "utf8")).digest).toBe(kv.ooo_digest);
    expect(minisign(["-Vm", at("kv.json"), "-p", at("ci.pub")])).toBe(0);
    expect(minisign(["-Vm", at("kv.json"), "-p", at("other.pub")])).not.toBe(0);
  });

  test("a stack that trusts a key refuses an image signed by another, before any disk is written, naming the image and the keys", async () => {
    const keys = (...files: string[]) => trustedKeys(files.map((f) => readFileSync(at(f), "utf8")), files);
    const ok = await resolveRoleImage(s.reader, "web", "kv@live", { trustedKeys: keys("other.pub", "ci.pub") });
    expect(ok.signer?.name).toBe("ci.pub");
    const e = await resolveRoleImage(s.reader, "web", "kv@live", { trustedKeys: keys("other.pub") }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RoleImageUnusable);
    expect((e as Error).message).toContain(`role web: image kv@live: its manifest is signed by key ID ${keyId("ci.pub")}, which is not trusted`);

    writeFileSync(
      at("stack.yaml"),
      `version: 1\nname: signed\nstore: { url: "${s.url}", token_file: read.token }\ntrust: { keys: [other.pub] }\nroles:\n  web: { count: 1, image: kv@live }\n`,
    );
    const deploy = await ooo(["deploy", "stack.yaml"], { OOO_STORE_TOKEN: "" });
    expect(deploy.code).not.toBe(0);
    expect(deploy.stderr).toContain("nothing was powered on");
    expect(deploy.stderr).toContain(`role web: image kv@live: its manifest is signed by key ID ${keyId("ci.pub")}, which is not trusted; the keys trusted are other.pub (key ID ${keyId("other.pub")})`);
    expect(existsSync(at(".ooo/signed/nodes"))).toBe(false);
    expect(existsSync(at(".ooo/signed/images")) ? readdirSync(at(".ooo/signed/images")) : []).toEqual([]);
  }, 60_000);

  test("an unsigned image is refused where keys are trusted, allowed where none are", async () => {
    const out = await build("plain", 2);
    await ooo(["publish", out], { OOO_STORE_TOKEN: WRITE_TOKEN });
    const keys = trustedKeys([readFileSync(at("ci.pub"), "utf8")], ["ci.pub"]);
    await expect(resolveRoleImage(s.reader, "web", "plain", { trustedKeys: keys })).rejects.toThrow(/its manifest is not signed; the keys trusted are ci.pub/);
    expect((await resolveRoleImage(s.reader, "web", "plain")).signer).toBeUndefined();
  }, 60_000);

  test("a store that changed the manifest or the root after signing is refused", async () => {
    const keys = trustedKeys([readFileSync(at("ci.pub"), "utf8")], ["ci.pub"]);
    const manifestBlob = join(s.dir, "blobs/sha256", kv.ooo_manifest!.slice(7, 9), kv.ooo_manifest!.slice(7));
    const record = join(s.dir, "images", `${kv.id}.json`);
    const [blob, rec] = [readFileSync(manifestBlob, "utf8"), readFileSync(record, "utf8")];
    try {
      // The manifest: one artifact's size, as a store serving other bytes under its name would.
      writeFileSync(manifestBlob, blob.replace('"size": 65536', '"size": 65537'));
      await expect(resolveRoleImage(s.reader, "web", "kv@live", { trustedKeys: keys })).rejects.toThrow(
        /its manifest does not match its signature by ci.pub \(key ID [0-9A-F]{16}\): it was changed after it was signed/,
      );
      writeFileSync(manifestBlob, blob);
      // The root: the record's data is another root than the one the signed manifest names.
      const other = "ab".repeat(32);
      await s.kill();
      writeFileSync(record, rec.replace(kv.os_hash_value!, other));
      await s.restart();
      await expect(resolveRoleImage(s.reader, "web", "kv@live", { trustedKeys: keys })).rejects.toThrow(
        `its manifest, signed by ci.pub (key ID ${keyId("ci.pub")}), names root ${kv.ooo_digest}, not sha256:${other}`,
      );
    } finally {
      writeFileSync(manifestBlob, blob);
      await s.kill();
      writeFileSync(record, rec);
      await s.restart();
    }
  }, 60_000);
});
