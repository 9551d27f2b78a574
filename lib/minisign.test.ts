import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireCommand } from "../test/support/require.ts";
import { KeyUnusable } from "./errors.ts";
import { formatPublicKey, formatSecretKey, generateKey, isEncrypted, parsePublicKey, parseSecretKey, parseSignature, signData, verifyData } from "./minisign.ts";

/**
 * ooo's minisign against Debian's `minisign`, both ways: what we sign it
 * verifies, what it signs we verify, keys either of us made sign for the
 * other — encrypted (scrypt, a few seconds each) or not — and a changed
 * file or a foreign key is refused by both.
 */
const dir = mkdtempSync(join(tmpdir(), "ooo-minisign-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string) => join(dir, name);

function minisign(args: string[], stdin?: string) {
  requireCommand("minisign");
  const p = Bun.spawnSync(["minisign", ...args], { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, out: `${p.stdout.toString()}${p.stderr.toString()}` };
}

const data = Buffer.from('{"version":1,"name":"kv","digest":"sha256:…"}\n');

describe("minisign compatibility", () => {
  test("we sign, minisign verifies; a changed file or another key fails", () => {
    const k = generateKey();
    writeFileSync(at("ours.pub"), formatPublicKey(k));
    writeFileSync(at("m.json"), data);
    writeFileSync(at("m.json.minisig"), signData(k, data, "timestamp:1700000000\tfile:m.json\thashed"));
    const ok = minisign(["-Vm", at("m.json"), "-p", at("ours.pub")]);
    expect(ok).toMatchObject({ code: 0 });
    expect(ok.out).toContain("Signature and comment signature verified");
    expect(ok.out).toContain("timestamp:1700000000\tfile:m.json\thashed");
    writeFileSync(at("m.json"), Buffer.concat([data, Buffer.from(" ")]));
    expect(minisign(["-Vm", at("m.json"), "-p", at("ours.pub")]).code).not.toBe(0);
    writeFileSync(at("m.json"), data);
    writeFileSync(at("other.pub"), formatPublicKey(generateKey()));
    expect(minisign(["-Vm", at("m.json"), "-p", at("other.pub")]).code).not.toBe(0);
  });

  test("minisign signs, we verify; a changed file, a changed trusted comment or another key fails", () => {
    expect(minisign(["-G", "-W", "-p", at("theirs.pub"), "-s", at("theirs.key")]).code).toBe(0);
    writeFileSync(at("t.json"), data);
    expect(minisign(["-S", "-s", at("theirs.key"), "-m", at("t.json"), "-t", "their comment"]).code).toBe(0);
    const pub = parsePublicKey(readFileSync(at("theirs.pub"), "utf8"));
    const text = readFileSync(at("t.json.minisig"), "utf8");
    const sig = parseSignature(text);
    expect(verifyData(data, sig, [pub])).toMatchObject({ ok: true, key: { id: pub.id } });
    expect(sig.trustedComment).toBe("their comment");
    expect(verifyData(Buffer.concat([data, Buffer.from(" ")]), sig, [pub])).toMatchObject({ ok: false, reason: "bad-signature" });
    expect(verifyData(data, parseSignature(text.replace("their comment", "our comment")), [pub])).toMatchObject({ ok: false, reason: "bad-comment" });
    expect(verifyData(data, sig, [generateKey()])).toMatchObject({ ok: false, reason: "unknown-key" });
  });

  test("a key minisign made without a password signs for us, and minisign verifies it", async () => {
    const k = await parseSecretKey(readFileSync(at("theirs.key"), "utf8"), undefined);
    expect(k.id).toBe(parsePublicKey(readFileSync(at("theirs.pub"), "utf8")).id);
    writeFileSync(at("u.json"), data);
    writeFileSync(at("u.json.minisig"), signData(k, data, "by ooo"));
    expect(minisign(["-Vm", at("u.json"), "-p", at("theirs.pub")]).code).toBe(0);
  });

  test("encrypted keys (minisign's default): ours sign in minisign with the password, minisign's in ours; a wrong password is refused", async () => {
    const k = generateKey();
    const text = await formatSecretKey(k, "correct horse");
    expect(isEncrypted(text)).toBe(true);
    writeFileSync(at("enc.key"), text, { mode: 0o600 });
    writeFileSync(at("enc.pub"), formatPublicKey(k));
    writeFileSync(at("e.json"), data);
    expect(minisign(["-S", "-s", at("enc.key"), "-m", at("e.json")], "correct horse\n")).toMatchObject({ code: 0 });
    expect(verifyData(data, parseSignature(readFileSync(at("e.json.minisig"), "utf8")), [k]).ok).toBe(true);

    expect(minisign(["-G", "-p", at("theirs-enc.pub"), "-s", at("theirs-enc.key")], "battery staple\nbattery staple\n").code).toBe(0);
    const theirs = readFileSync(at("theirs-enc.key"), "utf8");
    await expect(parseSecretKey(theirs, "wrong")).rejects.toBeInstanceOf(KeyUnusable);
    await expect(parseSecretKey(theirs, undefined)).rejects.toThrow(/encrypted, and no password/);
    const unlocked = await parseSecretKey(theirs, "battery staple");
    writeFileSync(at("f.json"), data);
    writeFileSync(at("f.json.minisig"), signData(unlocked, data, "by ooo"));
    expect(minisign(["-Vm", at("f.json"), "-p", at("theirs-enc.pub")]).code).toBe(0);
  }, 180_000);

  test("malformed keys and signatures are named errors", () => {
    expect(() => parsePublicKey("untrusted comment: x\nnot base64 at all\n", "x.pub")).toThrow(/cannot use x.pub/);
    expect(() => parseSignature("hello\n")).toThrow(/not a minisign signature/);
  });
});
